"""Data safety on real SQLite: drift, risk lint, rehearsal, irreversible migrations, retention."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shiplane.backup import create_backup, list_backups, prune_backups
from shiplane.migrate import discover
from shiplane.migrate.lint import blocking, lint
from tests.conftest import AppRepo
from tests.sqlite_util import columns, database

ADD_LEGACY = (
    "ALTER TABLE notes ADD COLUMN legacy TEXT;\n-- down\nALTER TABLE notes DROP COLUMN legacy;\n"
)


def on_dev(app_repo: AppRepo, message: str, files: dict[str, str]) -> str:
    app_repo.git("checkout", "-q", "dev")
    return app_repo.commit(message, files)


@pytest.mark.e2e
def test_drift_is_shown_and_refused_until_accepted(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]["schema"]
    assert status["drift"] is False and status["fingerprint"] == status["recorded"]
    db = app_repo.root / "dev" / "shared" / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE hand_made (x INTEGER)")  # someone changed the schema by hand
    conn.commit()
    conn.close()
    assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["schema"]["drift"] is True

    on_dev(app_repo, "add legacy", {"migrations/003_legacy.sql": ADD_LEGACY})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 6 and run.data["error"]["step"] == "guard"
    assert "changed outside shiplane" in run.data["error"]["message"]
    assert "--accept-drift" in run.data["error"]["next_action"]
    assert "legacy" not in columns(db, "notes")  # nothing migrated

    run = app_repo.shiplane("deploy", "dev", "--accept-drift")
    assert run.code == 0, run.stdout
    assert "legacy" in columns(db, "notes")
    assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["schema"]["drift"] is False


@pytest.mark.e2e
def test_rehearsal_catches_a_broken_down(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    broken_down = (
        "ALTER TABLE notes ADD COLUMN legacy TEXT;\nCREATE INDEX notes_legacy ON notes(legacy);\n"
        "-- down\nDROP INDEX notes_legacy;\n"  # forgets the column
    )
    on_dev(app_repo, "broken down", {"migrations/003_legacy.sql": broken_down})
    rehearsal = app_repo.shiplane("migrate", "dev", "--rehearse")
    assert rehearsal.code == 3
    assert "does not restore the schema" in rehearsal.data["error"]["message"]

    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", "auto_merge = true\nrehearse = true")
    )
    db = app_repo.root / "dev" / "shared" / "notes.db"
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3 and run.data["error"]["step"] == "guard"
    assert "rehearsal on a copy" in run.data["error"]["message"]
    assert "legacy" not in columns(db, "notes")  # the real database was never touched


@pytest.mark.e2e
def test_irreversible_migration_rolls_back_by_restore(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    one_way = "-- shiplane: irreversible\nALTER TABLE notes ADD COLUMN legacy TEXT;\n"
    on_dev(app_repo, "one way", {"VERSION": "2.0.0\n", "migrations/003_legacy.sql": one_way})
    rehearsal = app_repo.shiplane("migrate", "dev", "--rehearse")
    assert rehearsal.code == 0 and rehearsal.data["rehearsal"]["irreversible"] == ["003_legacy"]
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    assert "legacy" in columns(db, "notes")
    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout
    assert run.data["database"]["action"] == "restore"
    assert "irreversible" in run.data["database"]["why_restore"]
    assert "legacy" not in columns(db, "notes")


@pytest.mark.e2e
def test_lint_blocks_an_unannotated_column_drop_before_prod(app_repo: AppRepo) -> None:
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("expand then contract", {
        "migrations/003_legacy.sql": ADD_LEGACY,
        "migrations/004_drop_legacy.sql": "ALTER TABLE notes DROP COLUMN legacy;\n-- down\n"
                                          "ALTER TABLE notes ADD COLUMN legacy TEXT;\n",
    })  # fmt: skip
    lint_run = app_repo.shiplane("migrate", "dev", "--lint")
    assert lint_run.code == 0
    rules = {(f["migration"], f["rule"]) for f in lint_run.data["lint"]}
    assert ("004_drop_legacy", "drop-column") in rules
    assert app_repo.shiplane("deploy", "dev").code == 0  # dev is not gated: a warning only
    assert app_repo.shiplane("verify", "dev").code == 0
    run = app_repo.shiplane("promote", "prod")
    assert run.code == 6 and run.data["error"]["step"] == "guard"
    assert "004_drop_legacy: drops a column" in run.data["error"]["message"]
    assert "expand-contract" in run.data["error"]["next_action"]
    assert not (app_repo.root / "prod" / "shared" / "notes.db").exists()  # prod untouched


def test_annotated_contract_passes_lint(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "001_drop.sql").write_text("-- shiplane: expand-contract\nDROP TABLE old;\n")
    (directory / "002_drop.py").write_text(
        "def up(db):\n    db.execute('ALTER TABLE t RENAME COLUMN a TO b')\n"
    )
    (directory / "003_safe.py").write_text(
        "EXPAND_CONTRACT = True\n\ndef up(db):\n    db.execute('ALTER TABLE t DROP COLUMN c')\n"
        "\ndef down(db):\n    db.execute('DROP TABLE ignored_in_down')\n"
    )
    found = {m.label: lint(m) for m in discover(directory)}
    assert [f.rule for f in found["001_drop"]] == ["drop-table"] and not blocking(found["001_drop"])
    assert [f.rule for f in found["002_drop"]] == ["rename"] and blocking(found["002_drop"])
    assert [f.rule for f in found["003_safe"]] == ["drop-column"]  # down() is not linted
    assert not blocking(found["003_safe"])


def test_not_null_without_default_only_on_populated_tables(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER)")
    conn.commit()
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "001_x.sql").write_text("ALTER TABLE t ADD COLUMN x TEXT NOT NULL;\n")
    (directory / "002_y.sql").write_text("ALTER TABLE t ADD COLUMN y TEXT NOT NULL DEFAULT '';\n")
    migrations = discover(directory)
    assert lint(migrations[0], database(db)) == []  # empty table: safe
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    assert [f.rule for f in lint(migrations[0], database(db))] == ["not-null-without-default"]
    assert lint(migrations[1], database(db)) == []


def test_retention_by_count_and_days(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    ids = [create_backup(database(db), tmp_path / "b", {})["id"] for _ in range(5)]
    # Age the two oldest to 8 days.
    for backup_id in ids[:2]:
        manifest_path = tmp_path / "b" / backup_id / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["created_at"] = (datetime.now(UTC) - timedelta(days=8)).isoformat()
        manifest_path.write_text(json.dumps(manifest))
    removed = prune_backups(tmp_path / "b", keep=10, keep_days=7)
    assert sorted(removed) == sorted(ids[:2])
    removed = prune_backups(tmp_path / "b", keep=2, keep_days=7)
    assert sorted(removed) == sorted(ids[2:3])
    assert [m["id"] for m in list_backups(tmp_path / "b")] == [ids[4], ids[3]]
    for backup_id in ids[3:]:
        for item in (tmp_path / "b" / backup_id).iterdir():
            assert item.stat().st_mode & 0o777 == 0o600
