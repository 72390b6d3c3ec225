"""SIGKILL of `shiplane deploy` at each step: the next command recovers without manual work."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import AppRepo
from tests.sqlite_util import query

pytestmark = pytest.mark.e2e

STEPS = ["resolve", "export", "build", "guard", "backup", "migrate", "start", "health", "verify",
         "switch", "smoke", "drain", "record"]  # fmt: skip


def schema(db: Path) -> list[str]:
    return sorted(row[0] or "" for row in query(db, "SELECT sql FROM sqlite_master"))


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_step_then_recover(app_repo: AppRepo, step: str) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    old_sha = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    db = app_repo.root / "dev" / "shared" / "notes.db"
    before = schema(db)
    app_repo.git("checkout", "-q", "dev")
    new_sha = app_repo.commit("v2 with a migration", {
        "VERSION": "2.0.0\n",
        "migrations/003_pinned.sql": "ALTER TABLE notes ADD COLUMN pinned INTEGER DEFAULT 0;\n"
                                     "-- down\nALTER TABLE notes DROP COLUMN pinned;\n",
    })  # fmt: skip
    run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": f"{step}:kill"})
    assert run.code == -9

    status = app_repo.shiplane("status", "dev")
    assert status.code == 0
    info = status.data["envs"]["dev"]
    assert info["lock"] is None and info["consistent"] and info["healthy"]
    served = info["serving_sha"]
    # Before the pivot (drain) the deployment is undone; after it, it rolls forward.
    expected_sha = new_sha if step == "record" else old_sha
    assert served == expected_sha
    after = schema(db)
    assert after == before or ("pinned" in " ".join(after) and served == new_sha)
    server = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    assert len(server) == 1 and server[0]["serving"]  # no leftover instance

    again = app_repo.shiplane("deploy", "dev")
    assert again.code == 0, again.stdout
    assert httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["sha"] == new_sha
