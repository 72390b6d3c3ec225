"""PostgreSQL as a first-class database, against a real server the tests start."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PgServer
from shiplane.backup import create_backup, restore_backup
from shiplane.databases.postgresql import LOCK_KEY, PostgresDatabase
from shiplane.errors import BackupError, MigrationError
from shiplane.migrate import Migrator, discover
from shiplane.migrate.rehearse import rehearse

CREATE = (
    "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL);\n"
    "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g;\n"
    "-- down\nDROP TABLE items;\n"
)


def fresh(postgres: PgServer) -> PostgresDatabase:
    return PostgresDatabase(postgres.create_database(f"t_{secrets.token_hex(4)}"), lock_wait=2)


def write(directory: Path, files: dict[str, str]) -> list:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return discover(directory)


def checksum(database: PostgresDatabase) -> tuple[int, str]:
    rows = database.rows(
        "SELECT count(*), md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM items"
    )
    return rows[0][0], rows[0][1]


def test_failed_migration_leaves_the_database_as_it_was(postgres: PgServer, tmp_path: Path) -> None:
    database = fresh(postgres)
    migrator = Migrator(database)
    assert migrator.up(write(tmp_path / "m", {"001_items.sql": CREATE})) == ["001_items"]
    before = (checksum(database), database.fingerprint())
    bad = (
        "ALTER TABLE items ADD COLUMN price INTEGER;\nUPDATE items SET name = 'changed';\n"
        "INSERT INTO missing_table VALUES (1);\n-- down\nALTER TABLE items DROP COLUMN price;\n"
    )
    migrations = write(tmp_path / "m", {"002_half.sql": bad})
    with pytest.raises(MigrationError, match=r"002_half \(up\) failed"):
        migrator.up(migrations)
    assert (checksum(database), database.fingerprint()) == before
    assert [a["name"] for a in migrator.applied()] == ["items"]


def test_advisory_lock_serialises_migrations(postgres: PgServer, tmp_path: Path) -> None:
    database = fresh(postgres)
    slow = "SELECT pg_sleep(1);\nCREATE TABLE slow (id INTEGER);\n-- down\nDROP TABLE slow;\n"
    migrations = write(tmp_path / "m", {"001_slow.sql": slow})
    with psycopg.connect(database.url, autocommit=True, application_name="the holder") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        with pytest.raises(MigrationError, match="the holder") as info:
            Migrator(database).up(migrations)
        assert "waited 2s" in info.value.message
    # Two at once: one applies, the other waits for the lock and then finds nothing to do.
    results: list[object] = []

    def run() -> None:
        try:
            results.append(Migrator(PostgresDatabase(database.url, lock_wait=30)).up(migrations))
        except MigrationError as exc:
            results.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=len) == [[], ["001_slow"]]  # type: ignore[arg-type]
    assert time.monotonic() - started >= 1.0
    assert [a["name"] for a in Migrator(database).applied()] == ["slow"]


def test_backup_restore_round_trip_and_corruption(postgres: PgServer, tmp_path: Path) -> None:
    database = fresh(postgres)
    Migrator(database).up(write(tmp_path / "m", {"001_items.sql": CREATE}))
    before = checksum(database)
    manifest = create_backup(database, tmp_path / "backups", {"sha": "abc"})
    archive = tmp_path / "backups" / manifest["id"] / "database.dump"
    assert archive.stat().st_mode & 0o777 == 0o600 and manifest["engine"] == "postgresql"
    assert (
        postgres.password
        not in (tmp_path / "backups" / manifest["id"] / "manifest.json").read_text()
    )
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("DELETE FROM items WHERE id % 2 = 0")
        conn.execute("UPDATE items SET name = 'edited' WHERE id = 1")
    assert checksum(database) != before
    restored = restore_backup(tmp_path / "backups" / manifest["id"], database)
    assert checksum(database) == before
    assert restored["verified"]["schema"] == manifest["fingerprint"]

    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("DELETE FROM items WHERE id > 10")
    after_delete = checksum(database)
    with pytest.raises(BackupError, match="corrupted"):
        restore_backup(tmp_path / "backups" / manifest["id"], database)
    assert checksum(database) == after_delete  # nothing was overwritten


def test_rehearsal_on_a_copy(postgres: PgServer, tmp_path: Path) -> None:
    database = fresh(postgres)
    migrator = Migrator(database)
    migrator.up(write(tmp_path / "m", {"001_items.sql": CREATE}))
    broken = (
        "ALTER TABLE items ADD COLUMN price INTEGER;\nCREATE INDEX items_price ON items(price);\n"
        "-- down\nDROP INDEX items_price;\n"
    )
    migrations = write(tmp_path / "m", {"002_price.sql": broken})
    with pytest.raises(MigrationError, match="does not restore the schema"):
        rehearse(database, migrations)
    assert "price" not in database.columns("items")  # the real database was not touched
    scratch = database.rows("SELECT datname FROM pg_database WHERE datname LIKE '%rehearse%'")
    assert scratch == []  # the copy is gone
    good = broken.replace(
        "DROP INDEX items_price;", "DROP INDEX items_price;\nALTER TABLE items DROP COLUMN price;"
    )
    migrations = write(tmp_path / "m", {"002_price.sql": good})
    assert "up -> down -> up ok" in rehearse(database, migrations)["summary"]
