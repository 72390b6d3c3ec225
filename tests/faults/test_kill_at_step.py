"""A deploy dying inside the server at every step (as if its process were SIGKILLed), with a
client hammering the front door throughout.

Held means: the front door answered every request, the database equals the pre-deploy state or
the post-deploy state (never a mix), `shiplane status` is consistent, and the next deploy works.
"""

from __future__ import annotations

import httpx
import pytest

from tests.support.app_repo import AppRepo
from tests.support.faults import client_loop, db_state, without_checks

STEPS = [
    "lock",
    "resolve",
    "export",
    "build",
    "guard",
    "backup",
    "migrate",
    "release",
    "start",
    "health",
    "verify",
    "switch",
    "smoke",
    "workers",
    "drain",
    "record",
    "prune",
]
ROLLED_FORWARD = {"record", "prune"}  # killed after the pivot (drain): the deploy completes
# Killed once the switch was attempted: clients may have written through the new code, so the
# old release goes back first and the (additive) schema stays, since the old release passes
# its checks on it ("An acknowledged write is sacred").
SCHEMA_KEPT = {"switch", "smoke", "workers", "drain"}


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_step(app_repo: AppRepo, step: str, request: pytest.FixtureRequest) -> None:
    request.node.fault_cell = f"{step} x SIGKILL"
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    old_sha = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    for title in ("first", "second"):
        httpx.post(app_repo.url("dev", "/api/notes"), json={"title": title}, timeout=5)
    db = app_repo.root / "dev" / "shared" / "notes.db"
    app_repo.git("checkout", "-q", "dev")
    new_sha = app_repo.commit(
        "v2 with a migration",
        {
            "VERSION": "2.0.0\n",
            "migrations/003_pinned.sql": "ALTER TABLE notes ADD COLUMN pinned INTEGER DEFAULT 0;\n"
            "-- down\nALTER TABLE notes DROP COLUMN pinned;\n",
        },
    )
    with client_loop(app_repo.url("dev", "/api/version")) as loop:
        before = db_state(db)
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": f"{step}:kill"})
        # The deploy dies inside the server at the step; the front door keeps serving.
        assert run.code == 7, run.stdout
        assert run.data["error"]["next_action"].startswith("run `shiplane status`")
        status = app_repo.shiplane("status", "dev")
    assert loop.failures == [] and loop.ok > 0, loop.failures[:5]
    assert status.code == 0
    info = status.data["envs"]["dev"]
    assert info["lock"] is None and info["consistent"] and info["healthy"]
    assert status.data["recovered"] and status.data["recovered"][0]["env"] == "dev"
    after = db_state(db)
    if step in ROLLED_FORWARD:
        assert info["serving_sha"] == new_sha
        assert any("pinned" in sql for sql in after["schema"])
        assert set(before["rows"]) <= set(after["rows"])  # the new state, all old rows kept
    elif step in SCHEMA_KEPT:
        assert info["serving_sha"] == old_sha
        action = status.data["recovered"][0]["action"]
        assert "migrate: kept the new schema: the serving release passes its checks on it" in (
            action
        ), action
        # The schema the recovery says it kept: exactly the pre-deploy one plus the column.
        migrated = [
            sql[: -len(")")] + ", pinned INTEGER DEFAULT 0)"
            if sql.startswith("CREATE TABLE notes")
            else sql
            for sql in before["schema"]
        ]
        assert after["schema"] == sorted(migrated)
        assert after["rows"] == before["rows"]  # every row, untouched
        # The old release serves on it, and is healthy there.
        version = httpx.get(app_repo.url("dev", "/api/version"), timeout=5)
        assert version.status_code == 200 and version.json()["sha"] == old_sha
        notes = httpx.get(app_repo.url("dev", "/api/notes"), timeout=5)
        assert notes.status_code == 200, notes.text
    else:
        assert info["serving_sha"] == old_sha
        assert after == before  # exactly the pre-deploy state
    instances = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    assert len(instances) == 1 and instances[0]["serving"]  # nothing left over

    again = app_repo.shiplane("deploy", "dev")
    assert again.code == 0, again.stdout
    assert httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["sha"] == new_sha
