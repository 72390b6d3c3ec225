"""SQLite backups (round trip, corruption, mode) and the deploy lock (held, stale)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from shiplane.backup import create_backup, list_backups, prune_backups, restore_backup
from shiplane.errors import BackupError, LockHeldError
from shiplane.state import StateDB, acquire, holder, release
from tests.support.sqlite_util import database, dump


def make_db(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i}",) for i in range(rows)])
    conn.commit()
    conn.close()


def test_round_trip_preserves_every_row(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db, 500)
    before = dump(db)
    manifest = create_backup(database(db), tmp_path / "backups", {"sha": "abc"})
    archive = tmp_path / "backups" / manifest["id"] / "database.db.gz"
    assert archive.stat().st_mode & 0o777 == 0o600
    assert manifest["sha"] == "abc" and len(manifest["sha256"]) == 64
    make_db(db, 10)  # changes after the backup
    assert dump(db) != before
    restore_backup(tmp_path / "backups" / manifest["id"], database(db))
    assert dump(db) == before


def test_corrupted_backup_is_refused_before_overwriting(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db, 20)
    manifest = create_backup(database(db), tmp_path / "backups", {})
    archive = tmp_path / "backups" / manifest["id"] / "database.db.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    make_db(db, 5)
    current = dump(db)
    with pytest.raises(BackupError, match="corrupted"):
        restore_backup(tmp_path / "backups" / manifest["id"], database(db))
    assert dump(db) == current
    assert archive.exists()


def test_prune_keeps_newest(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    make_db(db, 1)
    ids = [create_backup(database(db), tmp_path / "b", {})["id"] for _ in range(4)]
    assert prune_backups(tmp_path / "b", keep=2) == [ids[1], ids[0]]
    assert [m["id"] for m in list_backups(tmp_path / "b")] == [ids[3], ids[2]]


def test_lock_held_by_live_process_refuses(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    acquire(db, "dev", "d1")
    with pytest.raises(LockHeldError, match="locked by deployment d1"):
        acquire(db, "dev", "d2")
    acquire(db, "prod", "p1")  # other environments are independent
    release(db, "dev", "d1")
    acquire(db, "dev", "d2")
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600


def test_lock_of_dead_process_is_taken_over(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from shiplane.state import StateDB, acquire;"
        "acquire(StateDB(Path(sys.argv[1])), 'dev', 'dead-one')"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "state.db")], check=True)
    db = StateDB(tmp_path / "state.db")
    assert holder(db, "dev")["deployment_id"] == "dead-one"
    taken = acquire(db, "dev", "alive")
    assert taken.stale_holder == "dead-one"
    assert holder(db, "dev")["deployment_id"] == "alive"
