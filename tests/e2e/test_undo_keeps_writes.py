"""An acknowledged write is sacred: a writer POSTs through the front door the whole time while
deploys fail at each step, roll back, and restores run; every id it saw acknowledged must still
be in the database, and the rollbacks must not fail a single request.

One server per test and faults injected at steps of one sequence (SHIPLANE_FAULT), so the
matrix fits the suite's budget."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo
from tests.support.sqlite_util import columns
from tests.support.writer import Writer, writing

HOME_CHECK = """
[[verify.check]]
name = "home page"
kind = "http"
group = "smoke"
path = "/"
contains = ["<h1>Notes</h1>"]
"""

OLD_INSERT = """        "INSERT INTO notes (title, body, tags) VALUES (?, ?, ?)",
        (title, str(payload.get("body", "")), str(payload.get("tags", ""))),"""
PINNED_INSERT = """        "INSERT INTO notes (title, body, tags, pinned) VALUES (?, ?, ?, ?)",
        (title, str(payload.get("body", "")), str(payload.get("tags", "")),
         payload.get("pinned")),"""


def smoke_only(app_repo: AppRepo) -> None:
    """Only the home page check (group smoke): the old release's check on the new schema."""
    config = app_repo.path / "shiplane.toml"
    config.write_text(config.read_text().split("# Checks:")[0] + HOME_CHECK)


def v2_files(app_repo: AppRepo, migration: str, app_changes: dict[str, str]) -> dict[str, str]:
    app = (app_repo.path / "app.py").read_text()
    for old, new in app_changes.items():
        assert old in app
        app = app.replace(old, new)
    return {"VERSION": "2.0.0\n", "migrations/003_v2.sql": migration, "app.py": app}


def present(db: Path, ids: list[int]) -> set[int]:
    conn = sqlite3.connect(db)
    try:
        found = {r[0] for r in conn.execute("SELECT id FROM notes")}
    finally:
        conn.close()
    return set(ids) - found


def settle(writer: Writer, writes: int = 5) -> None:
    """Let the writer land a few more acknowledged writes on what serves now."""
    target = writer.mark()[0] + writes
    deadline = time.monotonic() + 20
    while writer.mark()[0] < target and time.monotonic() < deadline:
        time.sleep(0.05)


def version(app_repo: AppRepo) -> str:
    return str(httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["version"])


def test_failed_deploys_and_an_additive_rollback_keep_every_write(app_repo: AppRepo) -> None:
    smoke_only(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    app_repo.git("checkout", "-q", "dev")
    additive = "ALTER TABLE notes ADD COLUMN pinned INTEGER;\n-- down\n"
    additive += "ALTER TABLE notes DROP COLUMN pinned;\n"
    app_repo.commit("v2: pinned", v2_files(app_repo, additive, {OLD_INSERT: PINNED_INSERT}))
    with writing(app_repo.url("dev"), lambda n: {"title": f"w{n}", "pinned": n}) as writer:
        settle(writer)
        # Before the switch only the old code wrote: `down` is safe.
        for step in ("health", "verify"):
            run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": f"{step}:fail"})
            assert run.code == 3 and run.data["error"]["step"] == step, run.stdout
            assert "pinned" not in columns(db, "notes")
            assert any("reverted 003_v2" in u for u in run.data["error"]["undone"]), run.stdout
            settle(writer)
        # After it (killed at smoke: recovery undoes), the old code goes back first and passes
        # its checks on the new schema: the schema, and what the new code wrote to it, stay.
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "smoke:kill"})
        assert run.code == 7, run.stdout
        status = app_repo.shiplane("status", "dev")
        assert status.data["recovered"][0]["status"] == "recovered", status.stdout
        assert "kept the new schema" in status.data["recovered"][0]["action"]
        assert "pinned" in columns(db, "notes") and version(app_repo) == "1.0.0"
        settle(writer)
        # Failing smoke with the schema already there: no migration ran, nothing is touched.
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "smoke:fail"})
        assert run.code == 4, run.stdout
        assert not any(u.startswith("migrate") for u in run.data["error"]["undone"])
        assert "pinned" in columns(db, "notes") and version(app_repo) == "1.0.0"
        settle(writer)
        assert app_repo.shiplane("deploy", "dev").code == 0
        assert version(app_repo) == "2.0.0"
        settle(writer, 20)
        before_rollback = writer.mark()
        run = app_repo.shiplane("rollback", "dev")
        assert run.code == 0, run.stdout
        assert run.data["database"]["action"] == "kept", run.stdout
        assert version(app_repo) == "1.0.0"
        settle(writer)
        assert writer.mark()[1] == before_rollback[1]
    assert writer.failures == [], writer.failures[:5]
    assert present(db, writer.acked) == set()
    assert "pinned" in columns(db, "notes")
    conn = sqlite3.connect(db)
    pinned = conn.execute("SELECT count(*) FROM notes WHERE pinned IS NOT NULL").fetchone()[0]
    conn.close()
    assert pinned > 0  # the writes to the new column stayed


def test_failing_promote_without_migration_restores_nothing(app_repo: AppRepo) -> None:
    smoke_only(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0
    assert app_repo.shiplane("promote", "prod").code == 0
    db = app_repo.root / "prod" / "shared" / "notes.db"
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2, no migration", {"VERSION": "2.0.0\n"})
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0
    with writing(app_repo.url("prod")) as writer:
        settle(writer)
        run = app_repo.shiplane("promote", "prod", extra_env={"SHIPLANE_FAULT": "health:fail"})
        assert run.code == 3, run.stdout
        assert not any("restored" in u for u in run.data["error"]["undone"]), run.stdout
        settle(writer)
    assert writer.failures == []
    assert writer.acked and present(db, writer.acked) == set()
