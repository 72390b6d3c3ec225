"""Forward migrations under the front door's hold: a migration the serving code cannot run on
(or any, with `[database] hold = true`) runs while new requests wait; the new release starts,
passes its health and checks, the switch releases the hold. A writer and a reader go through
the front door the whole time: no request may fail, no acknowledged write may be lost."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.test_undo_keeps_writes import (
    RENAME,
    RENAMED_APP,
    settle,
    smoke_only,
    v2_files,
    version,
)
from tests.support.app_db import AppDb
from tests.support.app_repo import AppRepo
from tests.support.reader import reading
from tests.support.sqlite_util import columns, dump
from tests.support.writer import writing


def present(db: Path, ids: list[int]) -> set[int]:
    """The acknowledged ids missing from the notes table (set() when every write is there)."""
    return AppDb(path=db).missing(ids)


ADDITIVE = (
    "ALTER TABLE notes ADD COLUMN pinned INTEGER;\n-- down\nALTER TABLE notes DROP COLUMN pinned;\n"
)
# A migration the rehearsal measures as slow (python: up is called twice on the copy).
SLOW = '''"""Add pinned, slowly."""

import time


def up(db):
    time.sleep(1.5)
    db.execute("ALTER TABLE notes ADD COLUMN pinned INTEGER")


def down(db):
    db.execute("ALTER TABLE notes DROP COLUMN pinned")
'''


def configure(app_repo: AppRepo, *, hold: bool = False, rehearse: bool = False) -> None:
    config = app_repo.path / "shiplane.toml"
    text = config.read_text()
    if hold:
        where = 'migrations = "migrations"\n'
        text = text.replace(where, where + "hold = true\n")
    if rehearse:
        text = text.replace("auto_merge = true\n", "auto_merge = true\nrehearse = true\n")
    config.write_text(text)


def first_note(app_repo: AppRepo) -> str:
    """A note for the reader: its route reads the database (and every column of the row)."""
    created = httpx.post(app_repo.url("dev", "/api/notes"), json={"title": "read me"}, timeout=5)
    assert created.status_code == 201
    return app_repo.url("dev", f"/api/notes/{created.json()['id']}")


def renaming_v2(app_repo: AppRepo) -> tuple[Path, str]:
    """1.0.0 serves (smoke checks only) with a note to read; dev's next commit renames a
    column the old code reads. The database file and the note's URL."""
    smoke_only(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    read_url = first_note(app_repo)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2: labels", v2_files(app_repo, RENAME, RENAMED_APP))
    return db, read_url


def test_a_rename_deploys_under_the_hold_and_a_failing_one_goes_back_inside_it(
    app_repo: AppRepo,
) -> None:
    db, read_url = renaming_v2(app_repo)
    with writing(app_repo.url("dev")) as writer, reading(read_url) as reader:
        settle(writer)
        # The new release never becomes healthy: `down` runs inside the same hold, the old
        # code serves the old schema again, and the waiting requests go through.
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "health:fail"})
        assert run.code == 3 and run.data["error"]["step"] == "health", run.stdout
        undone = " | ".join(run.data["error"]["undone"])
        assert "reverted 003_v2" in undone and "hold released" in undone, undone
        assert run.data["hold_seconds"] > 0 and run.data["hold"]["old_code_fails"]
        assert "tags" in columns(db, "notes") and "labels" not in columns(db, "notes")
        assert version(app_repo) == "1.0.0"
        settle(writer)
        run = app_repo.shiplane("deploy", "dev")
        assert run.code == 0, run.stdout
        assert run.data["hold_seconds"] > 0, run.stdout
        assert any("renames" in r for r in run.data["hold"]["reasons"]), run.data["hold"]
        assert run.data["hold"]["budget_seconds"] == 30.0
        assert version(app_repo) == "2.0.0" and "labels" in columns(db, "notes")
        settle(writer)
    assert writer.failures == [], writer.failures[:5]
    assert reader.failures == [], reader.failures[:5]
    assert reader.ok > 0 and writer.acked
    assert present(db, writer.acked) == set()
    # The hold made requests late: someone waited about as long as the hold lasted (a reader
    # asks many times a second, so one request meets the hold near its start).
    assert max(reader.latencies) >= 0.5 * run.data["hold_seconds"]


def test_hold_true_holds_an_additive_migration(app_repo: AppRepo) -> None:
    smoke_only(app_repo)
    configure(app_repo, hold=True)
    assert app_repo.shiplane("deploy", "dev").code == 0  # nothing pending: not held
    db = app_repo.root / "dev" / "shared" / "notes.db"
    read_url = first_note(app_repo)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2: pinned", v2_files(app_repo, ADDITIVE, {}))
    with writing(app_repo.url("dev")) as writer, reading(read_url) as reader:
        settle(writer)
        run = app_repo.shiplane("deploy", "dev", "--hold-timeout", "20")
        assert run.code == 0, run.stdout
        assert run.data["hold"]["reasons"] == ["database.hold = true"], run.data["hold"]
        assert run.data["hold"]["budget_seconds"] == 20.0
        assert run.data["hold_seconds"] > 0
        assert "pinned" in columns(db, "notes") and version(app_repo) == "2.0.0"
        settle(writer)
    assert writer.failures == [] and reader.failures == [], (writer.failures, reader.failures)
    assert present(db, writer.acked) == set()


def test_a_hold_that_cannot_fit_is_refused_before_anything_changes(app_repo: AppRepo) -> None:
    smoke_only(app_repo)
    configure(app_repo, hold=True, rehearse=True)
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2: slow", {"VERSION": "2.0.0\n", "migrations/003_slow.py": SLOW})
    backups = app_repo.root / "dev" / "backups"
    releases = app_repo.root / "dev" / "releases"

    def snapshot() -> tuple[list[str], list[str], list[str]]:
        listed = sorted(p.name for p in backups.iterdir()) if backups.is_dir() else []
        return dump(db), listed, sorted(p.name for p in releases.iterdir())

    before = snapshot()
    bad = app_repo.shiplane("deploy", "dev", "--hold-timeout", "0")
    assert bad.code == 64 and "--hold-timeout" in bad.data["error"]["message"], bad.stdout
    # 1.5 s measured on the copy x 2, plus the release's start: more than a 2 s hold.
    run = app_repo.shiplane("deploy", "dev", "--hold-timeout", "2")
    assert run.code == 6 and run.data["error"]["step"] == "guard", run.stdout
    assert "--hold-timeout" in run.data["error"]["next_action"]
    assert "expand/contract" in run.data["error"]["next_action"]
    assert "more than the 2s hold" in run.data["error"]["message"]
    assert snapshot() == before  # no migration, no backup, no release left behind
    assert version(app_repo) == "1.0.0"
    # With the room it asks for, the same deploy holds and passes.
    run = app_repo.shiplane("deploy", "dev", "--hold-timeout", "30")
    assert run.code == 0, run.stdout
    assert run.data["hold"]["migration_seconds"] >= 1.5
    assert run.data["hold"]["estimate_seconds"] < 30 and run.data["hold_seconds"] > 1.5
    assert "pinned" in columns(db, "notes")


def test_a_held_deploy_failing_smoke_goes_back_inside_a_hold(app_repo: AppRepo) -> None:
    """After the switch the old code cannot serve the renamed column: switching back holds
    first, `down` runs inside the hold, then the old release meets the old schema."""
    db, read_url = renaming_v2(app_repo)
    with writing(app_repo.url("dev")) as writer, reading(read_url) as reader:
        settle(writer)
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "smoke:fail"})
        assert run.code == 4, run.stdout
        undone = " | ".join(run.data["error"]["undone"])
        assert "reverted 003_v2 (inside the hold)" in undone and "hold released" in undone
        assert "labels" not in columns(db, "notes") and version(app_repo) == "1.0.0"
        settle(writer)
    assert writer.failures == [] and reader.failures == [], (writer.failures, reader.failures)
    assert present(db, writer.acked) == set()


def test_a_held_deploy_killed_mid_hold_is_recovered_and_released(app_repo: AppRepo) -> None:
    """The deploy dies inside the hold (the front door keeps holding): the next command's
    recovery runs `down` and releases the waiting requests, none of which fails."""
    db, read_url = renaming_v2(app_repo)
    with writing(app_repo.url("dev")) as writer, reading(read_url) as reader:
        settle(writer)
        run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "health:kill"})
        assert run.code == 7, run.stdout
        status = app_repo.shiplane("status", "dev")
        recovered = status.data["recovered"][0]
        assert recovered["status"] == "recovered", status.stdout
        assert "reverted 003_v2" in recovered["action"] and "hold released" in recovered["action"]
        assert "labels" not in columns(db, "notes") and version(app_repo) == "1.0.0"
        settle(writer)
    assert writer.failures == [] and reader.failures == [], (writer.failures, reader.failures)
    assert present(db, writer.acked) == set()


def test_promote_holds_where_the_env_says_so(app_repo: AppRepo) -> None:
    """`database.hold` set for prod only: dev's deploy of an additive migration is not held,
    prod's promote is, inside `--hold-timeout`, measured against prod's rehearsal."""
    smoke_only(app_repo)
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("backup = true\n", "backup = true\ndatabase.hold = true\n")
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0
    assert app_repo.shiplane("promote", "prod").code == 0  # nothing served: not held
    db = app_repo.root / "prod" / "shared" / "notes.db"
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2: pinned", v2_files(app_repo, ADDITIVE, {}))
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0 and run.data["hold"] is None and run.data["hold_seconds"] is None
    assert app_repo.shiplane("verify", "dev").code == 0
    with writing(app_repo.url("prod")) as writer:
        settle(writer)
        run = app_repo.shiplane("promote", "prod", "--hold-timeout", "25")
        assert run.code == 0, run.stdout
        hold = run.data["hold"]
        assert hold["reasons"] == ["database.hold = true"] and hold["budget_seconds"] == 25.0
        assert 0 < hold["estimate_seconds"] < 25 and run.data["hold_seconds"] > 0, hold
        settle(writer)
    assert writer.failures == [], writer.failures[:5]
    assert present(db, writer.acked) == set() and "pinned" in columns(db, "notes")
