"""Faults beyond a deploy dying at a step: the server killed mid-deploy, a full disk during the
backup, and the new version crashing after the switch."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.support.app_repo import SHIPLANE, AppRepo
from tests.support.faults import client_loop, db_state, without_checks
from tests.support.wait import serves, wait_for

MIGRATION = {
    "VERSION": "2.0.0\n",
    "migrations/003_pinned.sql": "ALTER TABLE notes ADD COLUMN pinned INTEGER DEFAULT 0;\n"
    "-- down\nALTER TABLE notes DROP COLUMN pinned;\n",
}


def test_server_killed_mid_deploy_and_restarted(
    app_repo: AppRepo, request: pytest.FixtureRequest
) -> None:
    request.node.fault_cell = "build x server SIGKILL"
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    old_sha = httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["sha"]
    app_repo.git("checkout", "-q", "dev")
    new_sha = app_repo.commit("v2", MIGRATION)
    # Long enough that the build is still running when a poll sees the deploy: one
    # `shiplane history` takes 3-4 s on a loaded machine, and a 2 s build let the whole deploy
    # finish between two polls. The kill ends the deploy, so the length costs nothing.
    app_repo.slow_build(20)
    deploy = subprocess.Popen(
        [*SHIPLANE, "deploy", "dev", "--json"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    # Wait until the deploy runs in the server (its build sleeps 20 s), then kill the server.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        latest = app_repo.shiplane("history", "dev", "--limit", "1").data["deployments"][0]
        if latest["status"] == "running":
            break
        time.sleep(0.05)
    else:
        out, _ = deploy.communicate(timeout=180)  # no client left running into the next test
        raise AssertionError(f"the second deploy never started: {out}")
    os.kill(int((app_repo.home / "server.pid").read_text()), signal.SIGKILL)
    out, _ = deploy.communicate(timeout=180)
    # The deploy ran in the server and died with it: the client says so (exit 7) ...
    assert deploy.returncode == 7, out
    # ... and the next command starts a new server, which serves what state.db records, and
    # recovers the interrupted deploy (nothing of it stays).
    status = app_repo.shiplane("status", "dev")
    assert status.data["recovered"] and status.data["recovered"][0]["status"] == "recovered"
    assert httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["sha"] == old_sha
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["sha"] == new_sha
    info = app_repo.shiplane("status", "dev").data["envs"]["dev"]
    assert info["consistent"] and info["healthy"] and info["lock"] is None
    instances = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    assert len(instances) == 1


def test_disk_full_during_backup(app_repo: AppRepo, request: pytest.FixtureRequest) -> None:
    request.node.fault_cell = "backup x disk full"
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    for index in range(300):  # enough rows that the backup cannot fit in 16 KiB
        httpx.post(
            app_repo.url("dev", "/api/notes"), json={"title": f"note {index}" * 5}, timeout=5
        )
    db = app_repo.root / "dev" / "shared" / "notes.db"
    backups = app_repo.root / "dev" / "backups"
    for old in backups.iterdir():
        subprocess.run(["rm", "-rf", str(old)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(backups)], check=True)
    try:
        app_repo.git("checkout", "-q", "dev")
        app_repo.commit("v2", MIGRATION)
        with client_loop(app_repo.url("dev", "/api/version")) as loop:
            before = db_state(db)
            run = app_repo.shiplane("deploy", "dev")
        assert run.code == 3, run.stdout
        assert run.data["error"]["step"] == "backup"
        assert "full" in run.data["error"]["message"] or "No space" in run.data["error"]["message"]
        assert loop.failures == [] and loop.versions == {"1.0.0"}
        assert db_state(db) == before  # nothing migrated without a backup
        assert list(backups.iterdir()) == []  # the partial backup was cleaned up
    finally:
        subprocess.run(["umount", str(backups)], check=True)
    again = app_repo.shiplane("deploy", "dev")
    assert again.code == 0, again.stdout


def test_app_crashing_after_the_switch(app_repo: AppRepo, request: pytest.FixtureRequest) -> None:
    request.node.fault_cell = "after switch x app crash"
    config = app_repo.path / "shiplane.toml"
    # The supervisor's restart alone: the watch would roll the version back (test_watch.py).
    config.write_text(config.read_text().replace("[deploy]\n", "[deploy]\nwatch = 0\n", 1))
    without_checks(config)
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    assert app_repo.shiplane("deploy", "dev").code == 0
    serving = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"][0]
    os.killpg(serving["pid"], signal.SIGKILL)  # the new version dies under traffic
    assert wait_for(lambda: not serves(app_repo.url("dev", "/api/version")), 10)

    def restarted() -> bool:
        now = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"][0]
        return now["restarts"] >= 1 and now["state"] == "running"

    assert wait_for(restarted)
    assert wait_for(lambda: serves(app_repo.url("dev", "/api/version")))
    info = app_repo.shiplane("status", "dev").data["envs"]["dev"]
    assert info["healthy"] and info["consistent"]
    # And a rollback still works from there.
    assert app_repo.shiplane("rollback", "dev").code == 0
    assert httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["version"] == "1.0.0"
