"""The CLI as a client: check the request here (bad input never starts a server), then ask this
host's server to run it and relay its progress and result."""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shiplane import api, gitops
from shiplane.caller import Caller
from shiplane.config.loader import LoadedConfig, find_config, load_config
from shiplane.credentials import client_token
from shiplane.errors import GitError, OperationInterrupted, ServerUnavailable, ShiplaneError
from shiplane.gitops import bundles, server_repo
from shiplane.hostconfig import load_host_config
from shiplane.layout import Layout
from shiplane.operations.boundary import guarded
from shiplane.pipeline.context import Progress
from shiplane.results import Result
from shiplane.targets.control_client import ServerClient

FOLLOW_INTERVAL = 0.25
# Operations whose commits the client pushes to the server's repository first.
SENDS_COMMITS = frozenset({"deploy"})
# Operations that may move an env branch: the client fetches the branches back afterwards.
FETCHES_BRANCHES = frozenset({"deploy", "promote", "approve"})


def run_in_server(
    name: str,
    caller: Caller,
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
    **args: Any,
) -> dict[str, Any]:
    """The operation's result as the server's JSON (what `--json` prints)."""
    failure = api.validate(name, caller, config_path=config_path, **args)
    if failure is not None:
        return failure.to_dict()
    outcome: dict[str, Any] = {}
    warnings: list[str] = []

    def send() -> Result:
        path = (config_path or find_config()).resolve()
        loaded = load_config(path)
        layout = Layout.for_app(loaded.config.app.name)
        request_args = dict(args)
        user_repo = None
        client = ServerClient(layout.server)
        if name in SENDS_COMMITS and request_args.get("source") is None:
            user_repo = gitops.ensure_repo(loaded.repo_dir)
            request_args["source"] = _send_commits(
                user_repo, loaded, layout, client, path, args, warnings
            )
        body = {
            "caller": dataclasses.asdict(caller),
            "args": request_args,
            "config_path": str(path),
            "token": client_token(),
            # Test-only; the server ignores it unless started with SHIPLANE_ALLOW_FAULTS=1.
            "fault": os.environ.get("SHIPLANE_FAULT") or None,
        }
        try:
            events = _relay(client, name, body, progress, outcome)
        except ServerUnavailable:
            # Single-user mode: the first client to find no server starts one, then asks again.
            client.ensure_running()
            events = _relay(client, name, body, progress, outcome)
        if events:
            if name in FETCHES_BRANCHES and args.get("source") is None:
                warnings.extend(_fetch_branches(user_repo, loaded, layout, client))
            return Result(command=name)
        raise OperationInterrupted(
            f"the shiplane server ended {name} without a result",
            next_action="run `shiplane status`: it recovers what the operation left",
        )

    relayed = guarded(name, args.get("env"), send)
    payload = outcome if outcome else relayed.to_dict()
    if warnings:
        payload["warnings"] = [*payload.get("warnings", []), *warnings]
    return payload


def _send_commits(
    user_repo: Path,
    loaded: LoadedConfig,
    layout: Layout,
    client: ServerClient,
    config_path: Path,
    args: dict[str, Any],
    warnings: list[str],
) -> dict[str, Any]:
    """Resolve what a deploy ships in the user's repository and send it to the server's
    repository; the request carries the shas, so the server never reads the user's repo.
    Single-user mode pushes to the repository's path; on an enforced host the repository is
    the server user's alone, so the commits travel as a bundle over the socket."""
    env_config = loaded.config.environments[args["env"]]
    source = server_repo.deploy_source(user_repo, env_config, args.get("ref"))
    if load_host_config() is not None:
        with tempfile.TemporaryDirectory(prefix="shiplane-send-") as scratch:
            bundle = Path(scratch) / "commits.bundle"
            bundles.create(user_repo, source.shas, bundle)

            def send() -> None:
                client.send_commits(layout.app, bundle, source.shas)

            _with_server(client, send)
    else:
        server_repo.ensure(layout.repo, config_path)
        server_repo.push_commits(user_repo, layout.repo, source.shas)
    if gitops.is_dirty(user_repo):
        warnings.append("the working tree has uncommitted changes: they were not deployed")
    return dataclasses.asdict(source)


def _fetch_branches(
    user_repo: Path | None, loaded: LoadedConfig, layout: Layout, client: ServerClient
) -> list[str]:
    """The server's env branches, back in the user's repository as refs/remotes/shiplane/*
    (from the repository's path, or as a bundle over the socket on an enforced host)."""
    if user_repo is None:
        try:
            user_repo = gitops.ensure_repo(loaded.repo_dir)
        except GitError:
            return []
    if load_host_config() is None:
        warning = server_repo.fetch_back(user_repo, layout.repo)
        return [warning] if warning else []
    try:
        with tempfile.TemporaryDirectory(prefix="shiplane-fetch-") as scratch:
            bundle = Path(scratch) / "branches.bundle"
            if client.fetch_branches(layout.app, bundle):
                bundles.fetch_branches(user_repo, bundle)
    except (ShiplaneError, httpx.HTTPError) as exc:
        return [f"could not fetch the env branches back into refs/remotes/shiplane/: {exc}"]
    return []


def _with_server(client: ServerClient, action: Callable[[], None]) -> None:
    """``action`` against the server, starting it first where this mode allows it."""
    try:
        action()
    except ServerUnavailable:
        client.ensure_running()
        action()


def _relay(
    client: ServerClient,
    name: str,
    body: dict[str, Any],
    progress: Progress | None,
    outcome: dict[str, Any],
) -> bool:
    """Relay the operation's events; True once its result arrived (into ``outcome``)."""
    for event in client.operation(name, body):
        if event.get("event") == "progress" and progress is not None:
            progress(event["step"], event["status"])
        elif event.get("event") == "result":
            outcome.update(event["result"])
            return True
    return False


def follow_log(deployment_id: str, caller: Caller, config_path: Path | None) -> None:
    """Write a deployment's log to stderr as it grows, until the deployment has ended. It asks
    the server (the log is the server's to read), so it works wherever the server runs."""
    offset = 0
    while True:
        payload = run_in_server(
            "logs", caller, config_path=config_path, deployment_id=deployment_id, offset=offset
        )
        if not payload.get("ok"):
            return  # the final `logs` call reports the error
        sys.stderr.write(payload.get("log", ""))
        sys.stderr.flush()
        offset = int(payload.get("next_offset", offset))
        if (payload.get("deployment") or {}).get("status") != "running":
            return
        time.sleep(FOLLOW_INTERVAL)
