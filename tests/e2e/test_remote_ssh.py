"""The same client against a server on another machine over SSH: a real sshd in a network
namespace, the server there with its own SHIPLANE_HOME, the client with another; commits and
config travel over the one SSH connection (tests/support/ssh_host.py)."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app_repo import AppRepo
from tests.support.ssh_host import SshHost, ssh_host

REMOTE_MAX_BUNDLE = 300_000


@pytest.fixture
def remote(app_repo: AppRepo, tmp_path: Path) -> Iterator[SshHost]:
    with ssh_host(tmp_path, {"SHIPLANE_MAX_BUNDLE_BYTES": str(REMOTE_MAX_BUNDLE)}) as host:
        app_repo.env.update(host.client_env)
        yield host


def served_there(remote: SshHost, port: int) -> str | None:
    """The sha the front door on the other machine serves (asked from over there)."""
    code = (
        "import httpx; print(httpx.get("
        f"'http://127.0.0.1:{port}/_deploy/version', timeout=5).json()['sha'])"
    )
    proc = remote.run_inside(sys.executable, "-c", code)
    return proc.stdout.strip() or None


def test_deploy_status_verify_rollback_on_a_server_over_ssh(
    app_repo: AppRepo, remote: SshHost
) -> None:
    first = app_repo.shiplane("--host", remote.destination, "deploy", "dev")
    assert first.code == 0, first.stdout + first.stderr
    main = app_repo.git("rev-parse", "main")
    assert first.data["sha"] == main
    assert app_repo.remote_branch("dev") == main  # fetched back over the same connection
    # Everything happened over there: the client's own home has no server, no app, no repo.
    assert not (app_repo.home / "server.sock").exists() and not app_repo.root.exists()
    there = remote.remote_home / "apps" / "notes"
    assert (there / "repo.git" / "HEAD").is_file()
    copy = there / "config"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700
    assert stat.S_IMODE((copy / "shiplane.toml").stat().st_mode) == 0o600
    manifest = json.loads((copy / "source.json").read_text())
    assert manifest["path"] == str(app_repo.path / "shiplane.toml")

    # The environment's `server` key names the host: no --host needed from now on.
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            f"port = {app_repo.ports['dev']}",
            f'port = {app_repo.ports["dev"]}\nserver = "{remote.destination}"',
            1,
        )
    )
    app_repo.git("checkout", "-q", "dev")
    second = app_repo.commit("notes 1.1.0", {"VERSION": "1.1.0\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert app_repo.remote_branch("dev") == second
    assert served_there(remote, app_repo.ports["dev"]) == second

    status = app_repo.shiplane("status", "dev")
    assert status.code == 0, status.stdout
    assert status.data["envs"]["dev"]["sha"] == second
    verified = app_repo.shiplane("verify", "dev")
    assert verified.code == 0, verified.stdout
    back = app_repo.shiplane("rollback", "dev")
    assert back.code == 0, back.stdout
    assert served_there(remote, app_repo.ports["dev"]) == main
    assert not (app_repo.home / "server.sock").exists()

    # A bundle bigger than the remote server takes: refused there, with what to do.
    app_repo.commit("big", {"blob.bin": os.urandom(REMOTE_MAX_BUNDLE).hex()})
    refused = app_repo.shiplane("deploy", "dev")
    assert refused.code == 64, refused.stdout
    assert "too large" in refused.data["error"]["message"]
    assert "SHIPLANE_MAX_BUNDLE_BYTES" in refused.data["error"]["next_action"]
    assert served_there(remote, app_repo.ports["dev"]) == main


def test_an_unreachable_host_is_exit_7_with_a_next_action(
    app_repo: AppRepo, remote: SshHost
) -> None:
    # Nothing listens on that port over there: the host answers, no sshd does.
    dead = app_repo.shiplane("--host", f"{remote.destination}:2222", "status")
    assert dead.code == 7, dead.stdout + dead.stderr
    assert "over SSH" in dead.data["error"]["message"]
    assert "ssh root@" in dead.data["error"]["next_action"]
    assert "Traceback" not in dead.stderr
    bad = app_repo.shiplane("--host", "-oProxyCommand=touch /tmp/x", "status")
    assert bad.code == 64 and "--host" in bad.data["error"]["message"]
