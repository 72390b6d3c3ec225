"""A `shiplane restore` whose server is SIGKILLed halfway (issue 12: a killed restore left a
SQLite hot journal, a half-written pre-restore backup and a scratch directory behind, and
`status`, `backup` and `restore` failed afterwards).

Held means: the next commands work (status, backup, the same restore again), no backup
directory is left without its manifest, no journal or scratch is left beside the database, and
the database is the backup's (or, when the kill came before the swap, the pre-restore one)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.app_repo import SHIPLANE, AppRepo
from tests.support.faults import without_checks
from tests.support.wait import serves, wait_for

ROWS = 200_000  # about 40 MB: the restore takes long enough to be killed inside


def bulk_notes(db: Path) -> None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        conn.executemany(
            "INSERT INTO notes (title, body) VALUES (?, ?)",
            ((f"bulk {n}", "x" * 200) for n in range(ROWS)),
        )
        conn.commit()
    finally:
        conn.close()


def count(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM notes").fetchone()[0])
    finally:
        conn.close()


def test_killed_restore_then_the_next_commands_work(
    app_repo: AppRepo, request: pytest.FixtureRequest
) -> None:
    request.node.fault_cell = "restore x SIGKILL"
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    backups = app_repo.root / "dev" / "backups"
    bulk_notes(db)
    backup = app_repo.shiplane("backup", "dev")
    assert backup.code == 0, backup.stdout
    backup_id = backup.data["backup"]["id"]
    for n in range(3):  # written since the backup: the restore needs --discard-writes
        created = httpx.post(app_repo.url("dev", "/api/notes"), json={"title": f"n{n}"}, timeout=5)
        assert created.status_code == 201
    before = set(os.listdir(backups))

    restore = subprocess.Popen(
        [*SHIPLANE, "restore", "dev", backup_id, "--yes", "--discard-writes"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Killed once the pre-restore backup is being written: inside the restore.
        assert wait_for(lambda: set(os.listdir(backups)) - before, timeout=60)
        time.sleep(0.3)
        os.kill(int((app_repo.home / "server.pid").read_text()), signal.SIGKILL)
    finally:
        restore.wait(timeout=60)
    assert wait_for(lambda: not serves(app_repo.url("dev", "/_deploy/health")))

    assert app_repo.shiplane("server").code == 0  # starts it again in the background
    status = app_repo.shiplane("status", "dev")
    assert status.code == 0, status.stdout + status.stderr
    assert wait_for(lambda: serves(app_repo.url("dev", "/api/version")), timeout=60)
    assert count(db) in (ROWS, ROWS + 3)  # the backup's rows, or untouched: never a mix
    again = app_repo.shiplane("backup", "dev")
    assert again.code == 0, again.stdout
    leftovers = [p.name for p in db.parent.iterdir() if p.name.startswith("notes.db-journal")]
    assert leftovers == []
    run = app_repo.shiplane("restore", "dev", backup_id, "--yes", "--discard-writes")
    assert run.code == 0, run.stdout
    assert count(db) == ROWS  # exactly the backup's rows
    assert httpx.get(app_repo.url("dev", "/api/notes/1"), timeout=5).status_code == 200
    listed = {b["id"] for b in app_repo.shiplane("backups", "dev").data["backups"]}
    # Nothing half-written: every directory in backups/ is a listed backup with its manifest.
    half = [e.name for e in backups.iterdir() if e.name not in listed]
    assert half == [], f"half-written backups left by the killed restore: {half}"
    scratch = [p for p in app_repo.root.rglob("*") if "scratch" in p.name or p.suffix == ".tmp"]
    assert scratch == []
