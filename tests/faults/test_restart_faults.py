"""A restart dying inside the server at every step of its plan, and a restart that fails on its
own (`env set` of a value the app cannot start with), with a client hammering the front door.

Held means: every request answered, one instance left and serving the same sha, `status`
consistent, and (for `env set`) the kept variables back to what serves."""

from __future__ import annotations

import httpx
import pytest

from tests.support.app_repo import AppRepo
from tests.support.faults import client_loop, without_checks

STEPS = ["lock", "target", "start", "health", "switch", "smoke", "workers", "drain", "record"]


@pytest.mark.parametrize("step", STEPS)
def test_restart_killed_at_step(
    app_repo: AppRepo, step: str, request: pytest.FixtureRequest
) -> None:
    request.node.fault_cell = f"restart {step} x SIGKILL"
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    sha = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    with client_loop(app_repo.url("dev", "/api/version")) as loop:
        run = app_repo.shiplane("restart", "dev", extra_env={"SHIPLANE_FAULT": f"{step}:kill"})
        assert run.code == 7, run.stdout
        status = app_repo.shiplane("status", "dev")
    assert loop.failures == [] and loop.ok > 0, loop.failures[:5]
    info = status.data["envs"]["dev"]
    assert info["lock"] is None and info["consistent"] and info["healthy"], info
    assert info["serving_sha"] == sha
    assert status.data["recovered"][0]["status"] == (
        "succeeded" if step == "record" else "recovered"
    )
    instances = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    assert len(instances) == 1 and instances[0]["serving"], instances
    assert app_repo.shiplane("restart", "dev").code == 0


def test_env_set_whose_restart_fails_is_undone(app_repo: AppRepo) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    with client_loop(app_repo.url("dev", "/api/version")) as loop:
        # gunicorn reads its options from this variable too: the new instance never starts.
        failed = app_repo.shiplane("env", "set", "dev", "GUNICORN_CMD_ARGS=--no-such-option")
    assert failed.code == 3, failed.stdout
    assert failed.data["reverted"] and not failed.data["applied"]
    assert failed.data["error"]["step"] == "health"
    assert "the change was undone" in failed.data["error"]["next_action"]
    assert loop.failures == [] and loop.ok > 0, loop.failures[:5]
    listed = app_repo.shiplane("env", "list", "dev").data["variables"]
    assert "GUNICORN_CMD_ARGS" not in {v["key"] for v in listed}
    after = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    assert [i["id"] for i in after] == [i["id"] for i in before]
