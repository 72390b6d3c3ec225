"""Data safety on real SQLite files, without a server: risk lint and backup retention."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shiplane.backup import create_backup, list_backups, prune_backups
from shiplane.migrate import discover
from shiplane.migrate.lint import blocking, lint
from tests.support.sqlite_util import database


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
