"""One server per host: every app on it has its own routes, and a port belongs to one app/env."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo, make_repo


def test_two_apps_share_one_server(app_repo: AppRepo, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "second", name="tasks", home=app_repo.home)
    try:
        assert app_repo.shiplane("deploy", "dev").code == 0
        deployed = other.shiplane("deploy", "dev")
        assert deployed.code == 0, deployed.stdout
        notes_sha = app_repo.git("rev-parse", "HEAD")
        other.commit("tasks v2", {"VERSION": "2.0.0\n"})
        tasks_sha = other.git("rev-parse", "HEAD")
        assert other.shiplane("deploy", "dev").code == 0
        # Each app's front door serves its own release.
        assert httpx.get(app_repo.url("dev", "/_deploy/version")).json()["sha"] == notes_sha
        assert httpx.get(other.url("dev", "/_deploy/version")).json()["sha"] == tasks_sha
        # One server process holds both, each app in its own directory.
        assert (app_repo.home / "server.pid").is_file()
        assert (app_repo.home / "apps" / "notes" / "state.db").is_file()
        assert (app_repo.home / "apps" / "tasks" / "state.db").is_file()
        server = app_repo.shiplane("server", "status").data
        assert set(server["apps"]) == {"notes", "tasks"}
        assert set(server["envs"]) == {"dev"} and server["app"] == "notes"
        # Rolling one app back leaves the other alone.
        assert other.shiplane("rollback", "dev").code == 0
        assert httpx.get(app_repo.url("dev", "/_deploy/version")).json()["sha"] == notes_sha
        assert httpx.get(other.url("dev", "/_deploy/version")).json()["sha"] != tasks_sha

        # A port another app's environment holds is refused, naming who holds it.
        config = other.path / "shiplane.toml"
        config.write_text(
            config.read_text().replace(
                f"port = {other.ports['dev']}", f"port = {app_repo.ports['dev']}"
            )
        )
        clash = other.shiplane("deploy", "dev")
        assert clash.code == 64, clash.stdout
        assert "the front door of notes/dev" in clash.data["error"]["message"]
        # The first app still serves on its port.
        assert httpx.get(app_repo.url("dev", "/_deploy/version")).json()["sha"] == notes_sha
    finally:
        other.stop_server()


def _servers_of(home: Path) -> list[int]:
    """The `shiplane server` processes serving ``home`` (whatever their state)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"server" in argv and str(home).encode() in argv:
            found.append(int(entry.name))
    return found


def test_a_stopped_server_is_reported_never_replaced(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    assert app_repo.shiplane("deploy", "dev").code == 0
    pid = int((app_repo.home / "server.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        for command in (("rollback", "dev"), ("deploy", "dev")):
            started = time.monotonic()
            run = app_repo.shiplane(*command, timeout=120)
            # Exit 7 (infrastructure unavailable) at once, naming the server and what to do.
            assert run.code == 7, run.stdout + run.stderr
            assert f"server not answering (pid {pid})" in run.data["error"]["message"]
            assert f"kill -CONT {pid}" in run.data["error"]["next_action"]
            assert time.monotonic() - started < 20
            assert _servers_of(app_repo.home) == [pid]  # no second server
            assert int((app_repo.home / "server.pid").read_text()) == pid
    finally:
        os.kill(pid, signal.SIGCONT)
    rolled = app_repo.shiplane("rollback", "dev")
    assert rolled.code == 0, rolled.stdout
    status = app_repo.shiplane("status", "dev")
    assert status.code == 0 and status.data["envs"]["dev"]["healthy"]
    assert _servers_of(app_repo.home) == [pid]
