"""How the client reaches a shiplane server: this machine's (``Local``) or another one's over
SSH (``shiplane.cli.ssh.Ssh``). Both speak the same control API on a Unix socket (the remote
one forwarded over the SSH connection); only where the socket is, how a missing server is
started and how commits travel differ.

Commits always can travel as git bundles over the control API (``send_commits``,
``fetch_objects``: no filesystem access to the server); a local client with write access to the
server's repository pushes to its path instead, which is faster (bench/RESULTS.md).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from shiplane.cli.refs_back import remote_refs
from shiplane.config.hosts import parse_host
from shiplane.config.loader import LoadedConfig
from shiplane.errors import ConfigError, GitError, ServerNotAnswering, ServerUnavailable
from shiplane.gitops import bundles, server_repo
from shiplane.gitops.git import git
from shiplane.layout import Layout, ServerLayout
from shiplane.targets.control_client import ServerClient


class Connection:
    """A server reached through ``client``; the base sends commits as bundles."""

    label = "local"

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def open(self) -> None:
        """Ready to send requests (a remote connection connects here)."""

    def ensure_server(self) -> None:
        """Make a server answer (start one, reconnect): after a ServerUnavailable."""
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to close for a local server; an SSH connection stays up for the next
        command (ControlPersist) and closes itself when idle."""

    def _json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.exchange(path, body=body)
        try:
            data: dict[str, Any] = response.json()
        except ValueError:
            raise GitError(
                f"the shiplane server answered {response.status_code} without JSON on {path}",
                step="send",
                next_action="retry; if it persists, see the server's log",
            ) from None
        if response.status_code >= 400:
            raise GitError(
                f"the shiplane server refused: {data.get('error')}",
                step="send",
                next_action=data.get("next_action") or "retry",
            )
        return data

    def send_commits(self, user_repo: Path, app: str, shas: list[str]) -> None:
        """``shas`` (with their history) into the server's repository as
        ``refs/shiplane/incoming/<sha>``."""
        status = self._json(f"/apps/{app}/commits", {"shas": shas})
        missing = list(status.get("missing") or [])
        if missing:
            self._send_bundle(user_repo, app, missing, list(status.get("heads") or []))

    def _send_bundle(self, user_repo: Path, app: str, shas: list[str], heads: list[str]) -> None:
        with tempfile.TemporaryDirectory(prefix="shiplane-send-") as scratch:
            bundle = Path(scratch) / "send.bundle"
            bundles.create_for(user_repo, shas, heads, bundle)
            size, cap = bundle.stat().st_size, bundles.max_bundle_bytes()
            if size > cap:
                raise GitError(
                    f"the commits to send make a {size}-byte bundle; at most {cap} travel to "
                    "the shiplane server",
                    step="send",
                    next_action="remove large files from the history, or raise "
                    "SHIPLANE_MAX_BUNDLE_BYTES on both sides",
                )
            response = self.client.exchange(f"/apps/{app}/bundle", content=bundle.read_bytes())
        if response.status_code >= 400:
            data = response.json()
            raise GitError(
                f"the shiplane server refused the commits: {data.get('error')}",
                step="send",
                next_action=data.get("next_action") or "retry",
            )

    def fetch_objects(self, user_repo: Path, app: str, branches: dict[str, str]) -> None:
        """The commits of the server's ``branches`` into the user's repository (no ref)."""
        local = bundles.present(user_repo, list(remote_refs(user_repo).values()))
        response = self.client.exchange(f"/apps/{app}/branches/bundle", body={"have": [*local]})
        if response.status_code == 204:
            return
        if response.status_code >= 400:
            raise GitError(f"the shiplane server: {response.json().get('error')}", step="fetch")
        with tempfile.TemporaryDirectory(prefix="shiplane-fetch-") as scratch:
            bundle = Path(scratch) / "branches.bundle"
            bundle.write_bytes(response.content)
            bundles.fetch_bundle(user_repo, bundle, branches)


class Local(Connection):
    """This machine's server (single-user mode: started by the first client that needs it)."""

    def __init__(self, layout: ServerLayout) -> None:
        super().__init__(ServerClient(layout))
        self.layout = layout

    def ensure_server(self) -> None:
        self.client.ensure_running()

    def send_commits(self, user_repo: Path, app: str, shas: list[str]) -> None:
        repo = Layout(self.layout.root, app).repo
        if not server_repo.writable(repo):
            # The server creates its repository (or it is not ours to write): over the socket.
            super().send_commits(user_repo, app, shas)
            return
        server_repo.push_commits(user_repo, repo, shas)

    def fetch_objects(self, user_repo: Path, app: str, branches: dict[str, str]) -> None:
        repo = Layout(self.layout.root, app).repo
        if not os.access(repo, os.R_OK | os.X_OK):
            super().fetch_objects(user_repo, app, branches)
            return
        git(
            user_repo,
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            str(repo),
            *(f"refs/heads/{branch}" for branch in sorted(branches)),
            timeout=server_repo.PUSH_TIMEOUT,
        )


def host_for(host: str | None, loaded: LoadedConfig | None, env: str | None) -> str | None:
    """Which server a command talks to: ``--host``, else the environment's ``server`` (for a
    command without an environment: the one server every environment names, if they agree),
    else this machine's (None)."""
    if host:
        try:
            parse_host(host)
        except ValueError as exc:
            raise ConfigError(f"--host {host!r}: {exc}", next_action="fix --host") from None
        return host
    if loaded is None:
        return None
    environments = loaded.config.environments
    if env is not None and env in environments:
        return environments[env].server
    servers = {e.server for e in environments.values()}
    return servers.pop() if len(servers) == 1 else None


def ensure_then(connection: Connection, attempt: Any) -> Any:
    """``attempt()``; when no server answers, start (or reach) one and try once more."""
    try:
        return attempt()
    except ServerNotAnswering:
        raise  # a server lives: starting or reaching another would fight it
    except ServerUnavailable:
        connection.ensure_server()
        return attempt()
