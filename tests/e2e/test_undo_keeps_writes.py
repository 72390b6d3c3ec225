"""An acknowledged write is sacred: a writer POSTs through the front door the whole time while
deploys fail at each step, roll back, and restores run; every id it saw acknowledged must still
be in the database, and the rollbacks must not fail a single request.

Every scenario runs on SQLite and on PostgreSQL (the same app, DATABASE_URL differs). One
server per test and faults injected at steps of one sequence (SHIPLANE_FAULT), so the matrix
fits the suite's budget."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.app_db import DATABASES, AppDb, use_postgres
from tests.support.app_repo import AppRepo
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


@pytest.fixture(params=DATABASES)
def notes(app_repo: AppRepo, request: pytest.FixtureRequest) -> tuple[AppRepo, dict[str, AppDb]]:
    """The notes example with only its smoke check, and each environment's database."""
    smoke_only(app_repo)
    if request.param == "postgresql":
        return app_repo, use_postgres(
            app_repo.path / "shiplane.toml", request.getfixturevalue("postgres")
        )
    shared = {env: app_repo.root / env / "shared" / "notes.db" for env in ("dev", "prod")}
    return app_repo, {env: AppDb(path=path) for env, path in shared.items()}


def settle(writer: Writer, writes: int = 5) -> None:
    """Let the writer land a few more acknowledged writes on what serves now."""
    target = writer.mark()[0] + writes
    deadline = time.monotonic() + 20
    while writer.mark()[0] < target and time.monotonic() < deadline:
        time.sleep(0.05)


def version(app_repo: AppRepo) -> str:
    return str(httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["version"])


def test_failed_deploys_and_an_additive_rollback_keep_every_write(
    notes: tuple[AppRepo, dict[str, AppDb]],
) -> None:
    app_repo, dbs = notes
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = dbs["dev"]
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
            assert "pinned" not in db.columns("notes")
            assert any("reverted 003_v2" in u for u in run.data["error"]["undone"]), run.stdout
            settle(writer)
        # After it (killed at smoke: recovery undoes), the old code goes back first and passes
        # its checks on the new schema: the schema, and what the new code wrote to it, stay.
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "smoke:kill"})
        assert run.code == 7, run.stdout
        status = app_repo.shiplane("status", "dev")
        assert status.data["recovered"][0]["status"] == "recovered", status.stdout
        assert "kept the new schema" in status.data["recovered"][0]["action"]
        assert "pinned" in db.columns("notes") and version(app_repo) == "1.0.0"
        settle(writer)
        # Failing smoke with the schema already there: no migration ran, nothing is touched.
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "smoke:fail"})
        assert run.code == 4, run.stdout
        assert not any(u.startswith("migrate") for u in run.data["error"]["undone"])
        assert "pinned" in db.columns("notes") and version(app_repo) == "1.0.0"
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
    assert db.missing(writer.acked) == set()
    assert "pinned" in db.columns("notes")
    pinned = db.scalar("SELECT count(*) FROM notes WHERE pinned IS NOT NULL")
    assert pinned > 0  # the writes to the new column stayed


def test_failing_promote_without_migration_restores_nothing(
    notes: tuple[AppRepo, dict[str, AppDb]],
) -> None:
    app_repo, dbs = notes
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0
    assert app_repo.shiplane("promote", "prod").code == 0
    db = dbs["prod"]
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
    assert writer.acked and db.missing(writer.acked) == set()


# Not additive: the old code reads `tags`, which v2 renames; v2 also adds `pinned`.
RENAME = (
    "ALTER TABLE notes RENAME COLUMN tags TO labels;\n"
    "ALTER TABLE notes ADD COLUMN pinned INTEGER;\n"
    "-- down\nALTER TABLE notes DROP COLUMN pinned;\n"
    "ALTER TABLE notes RENAME COLUMN labels TO tags;\n"
)
RENAMED_APP = {
    OLD_INSERT: OLD_INSERT.replace(
        "tags) VALUES (?, ?, ?)", "labels, pinned) VALUES (?, ?, ?, ?)"
    ).replace('str(payload.get("tags", ""))),', 'str(payload.get("tags", "")),\n         None),'),
    '"tags": row["tags"]}': '"tags": row["labels"]}',
}


def test_non_additive_rollback_downs_under_the_hold_or_refuses(
    notes: tuple[AppRepo, dict[str, AppDb]],
) -> None:
    app_repo, dbs = notes
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = dbs["dev"]
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2: labels", v2_files(app_repo, RENAME, RENAMED_APP))
    with writing(app_repo.url("dev")) as writer:
        settle(writer)
        assert app_repo.shiplane("deploy", "dev").code == 0
        settle(writer)
        # The new objects are empty (`pinned` is never written): down runs inside the hold.
        before = writer.mark()
        run = app_repo.shiplane("rollback", "dev")
        assert run.code == 0, run.stdout
        database = run.data["database"]
        assert database["action"] == "down" and database["reverted"] == ["003_v2"], run.stdout
        assert database["old_code_fails"] and database["hold_seconds"] is not None
        assert version(app_repo) == "1.0.0" and "labels" not in db.columns("notes")
        settle(writer)
        assert writer.mark()[1] == before[1]  # answered late, never failed

        # Forward again (on purpose: the commit was rolled back); now the new column holds a
        # write since the migration.
        assert app_repo.shiplane("deploy", "dev", "--include-rolled-back").code == 0
        db.execute("UPDATE notes SET pinned = 1 WHERE id = (SELECT max(id) FROM notes)")
        settle(writer)
        run = app_repo.shiplane("rollback", "dev")
        assert run.code == 6, run.stdout
        assert "notes.pinned (1 values)" in run.data["error"]["message"]
        assert "--discard-writes" in run.data["error"]["next_action"]
        assert version(app_repo) == "2.0.0" and "pinned" in db.columns("notes")
        settle(writer)
        before = writer.mark()
        run = app_repo.shiplane("rollback", "dev", "--discard-writes")
        assert run.code == 0, run.stdout
        saved = run.data["database"]["discarded_backup"]
        assert saved and (app_repo.root / "dev" / "backups" / saved / "manifest.json").is_file()
        assert version(app_repo) == "1.0.0"
        settle(writer)
        assert writer.mark()[1] == before[1]
    # (The forward deploys of this non-additive migration are not held yet: the old code
    # fails between migrate and switch. Only the rollbacks are counted above.)
    assert db.missing(writer.acked) == set()


def test_restore_is_checked(notes: tuple[AppRepo, dict[str, AppDb]]) -> None:
    app_repo, dbs = notes
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = dbs["dev"]
    backup = app_repo.shiplane("backup", "dev")
    assert backup.code == 0
    backup_id = backup.data["backup"]["id"]
    with writing(app_repo.url("dev")) as writer:
        settle(writer)
        run = app_repo.shiplane("restore", "dev", backup_id, "--yes")
        assert run.code == 6 and "notes (" in run.data["error"]["message"], run.stdout
        settle(writer)
    assert db.missing(writer.acked) == set()  # the refused restore discarded nothing
    run = app_repo.shiplane("restore", "dev", backup_id, "--yes", "--discard-writes")
    assert run.code == 0, run.stdout
    saved = run.data["pre_restore_backup"]
    listed = [b["id"] for b in app_repo.shiplane("backups", "dev").data["backups"]]
    assert saved in listed and run.data["discarded"]
    assert db.missing(writer.acked) == set(writer.acked)  # they are in the pre-restore backup
    assert httpx.get(app_repo.url("dev", "/"), timeout=5).status_code == 200
