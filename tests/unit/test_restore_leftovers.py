"""What a killed backup or restore leaves, on real SQLite files: only complete backups are
listed, leftovers of dead writers are removed and live ones kept, a hot journal is rolled
back, and a restore of an empty backup runs through the exclusive connection."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from shiplane.backup import create_backup, list_backups, prune_backups
from shiplane.backup.checked import checked_restore
from shiplane.backup.leftovers import clean
from shiplane.databases.base import SWAP_RECORD
from shiplane.databases.scratch import in_progress, temp_name
from shiplane.databases.sqlite import SqliteDatabase


def make_db(path: Path, rows: int) -> SqliteDatabase:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO items (body) VALUES (?)", [("x" * 1000,)] * rows)
    conn.commit()
    conn.close()
    return SqliteDatabase(f"sqlite:///{path}")


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_leftovers_of_dead_writers_go_and_live_ones_stay(tmp_path: Path) -> None:
    database, backups = make_db(tmp_path / "app.db", 10), tmp_path / "backups"
    kept = create_backup(database, backups, {"env": "t"})["id"]
    gone = dead_pid()
    (backups / f".partial-{gone}-0-aa").mkdir()  # a backup killed before its rename
    (backups / f".partial-{gone}-0-aa" / "database.db.gz").write_bytes(b"half")
    (backups / f".scratch-{gone}-0-bb").mkdir()
    (backups / "20200101-000000-000000").mkdir()  # written before temp names: no manifest
    (backups / ".hidden-by-someone").write_text("not ours")
    swap = backups / f".scratch-{gone}-0-cc"
    swap.mkdir()
    (swap / SWAP_RECORD).write_text(json.dumps({"live": "x", "new": "y", "old": "z"}))
    with in_progress(backups / temp_name("partial")) as live:
        live.mkdir()
        assert [m["id"] for m in list_backups(backups)] == [kept]
        clean(backups)  # without a database: the swap record waits for recovery
        left = sorted(p.name for p in backups.iterdir())
        assert left == sorted([kept, live.name, swap.name, ".hidden-by-someone"])
    assert not live.exists()
    done = clean(backups, database)  # SQLite has no swap to settle: the record just goes
    assert done == [f"removed {swap.name}"]
    assert sorted(p.name for p in backups.iterdir()) == sorted([kept, ".hidden-by-someone"])


def test_prune_removes_leftovers_and_keeps_backups_whole(tmp_path: Path) -> None:
    database, backups = make_db(tmp_path / "app.db", 10), tmp_path / "backups"
    ids = [create_backup(database, backups, {"env": "t"})["id"] for _ in range(3)]
    (backups / f".partial-{dead_pid()}-0-aa").mkdir()
    assert prune_backups(backups, keep=1) == ids[:2][::-1]
    assert sorted(p.name for p in backups.iterdir()) == [ids[2]]


KILL_MID_TRANSACTION = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 10")  # spill into the database file before the kill
conn.execute("BEGIN IMMEDIATE")
conn.execute("DELETE FROM items")
conn.executemany("INSERT INTO items (body) VALUES (?)", [("y" * 1000,)] * 2000)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_settle_rolls_back_a_killed_writers_journal(tmp_path: Path) -> None:
    database = make_db(tmp_path / "app.db", 500)
    proc = subprocess.run([sys.executable, "-c", KILL_MID_TRANSACTION, str(database.path)],
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == -9
    journal = tmp_path / "app.db-journal"
    assert journal.is_file()
    reader = sqlite3.connect(f"file:{database.path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("SELECT count(*) FROM items").fetchone()
    finally:
        reader.close()
    assert database.settle({}) == "rolled back the journal of app.db"
    assert not journal.exists()
    assert database.rows("SELECT count(*), min(body) FROM items") == [[500, "x" * 1000]]


def test_reads_roll_back_a_hot_journal_themselves(tmp_path: Path) -> None:
    database = make_db(tmp_path / "app.db", 500)
    subprocess.run([sys.executable, "-c", KILL_MID_TRANSACTION, str(database.path)],
                   timeout=60, check=False)  # fmt: skip
    assert (tmp_path / "app.db-journal").is_file()
    assert database.rows("SELECT count(*) FROM items") == [[500]]  # status, backup: no error


def test_restoring_an_empty_backup_goes_through_the_held_connection(tmp_path: Path) -> None:
    """A backup taken before the database existed: the restore empties it through the
    connection holding BEGIN IMMEDIATE (another connection would wait on that lock)."""
    path, backups = tmp_path / "app.db", tmp_path / "backups"
    database = SqliteDatabase(f"sqlite:///{path}")
    empty = create_backup(database, backups, {"env": "t"})
    assert empty["empty"] is True
    make_db(path, 3)
    outcome = checked_restore(database, backups, empty["id"], env="t", discard_writes=True)
    assert database.tables() == set()
    assert outcome["written_since"] == ["items (3 rows, a table the backup does not have)"]
    assert not [p for p in backups.iterdir() if p.name.startswith(".")]
