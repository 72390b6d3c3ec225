"""Backup benchmark: shiplane's backup/restore of a ~100 MB database next to the plain tools.

Run: .venv/bin/python bench/backup.py [--mb 100]
SQLite: shiplane (online backup API + gzip + sha256 manifest) vs `sqlite3 db ".backup f"`.
PostgreSQL (a server started here, as the tests do): shiplane (pg_dump -Fc + sha256, restore
with pg_restore + integrity and schema checks) vs plain `pg_dump -Fc` / `pg_restore`.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from devtools.pgserver import pg_server
from shiplane.backup import create_backup, restore_backup
from shiplane.databases.postgresql import PostgresDatabase
from shiplane.databases.sqlite import SqliteDatabase


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else (path.stat().st_size)
    )


def row(label: str, seconds: float, nbytes: int | None, base: float | None = None) -> None:
    ratio = f"{seconds / base:6.2f}x" if base else "   1.00x"
    mb = f"{nbytes / 1e6:8.1f} MB" if nbytes is not None else " " * 11
    print(f"{label:46} {seconds:7.2f} s {ratio}  {mb}")


def bench_sqlite(work: Path, mb: int) -> None:
    db = work / "app.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, payload TEXT)")
    rows = mb * 1_000_000 // 250
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO items (payload) SELECT printf('%d %s', i, hex(randomblob(118))) FROM n",
        (rows,),
    )
    conn.commit()
    conn.close()
    print(f"\nSQLite, {db.stat().st_size / 1e6:.0f} MB, {rows} rows")
    plain = work / "plain.db"
    base = timed(lambda: subprocess.run(["sqlite3", str(db), f".backup {plain}"], check=True))
    row("sqlite3 .backup (plain copy)", base, plain.stat().st_size)
    database = SqliteDatabase(f"sqlite:///{db}")
    manifest: dict[str, object] = {}
    seconds = timed(lambda: manifest.update(create_backup(database, work / "b", {})))
    row(
        "shiplane backup (online API + gzip + sha256)",
        seconds,
        size(work / "b" / str(manifest["id"])),
        base,
    )
    restore = timed(lambda: restore_backup(work / "b" / str(manifest["id"]), database))
    copy_back = timed(lambda: subprocess.run(["sqlite3", str(db), f".restore {plain}"], check=True))
    row("sqlite3 .restore (plain)", copy_back, None)
    row("shiplane restore (sha256, gunzip, load, checks)", restore, None, copy_back)


def bench_postgres(work: Path, mb: int) -> None:
    with pg_server(free_port()) as server:
        url = server.create_database("bench")
        rows = mb * 1_000_000 // 250
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id SERIAL PRIMARY KEY, payload TEXT)")
            conn.execute(
                "INSERT INTO items (payload) SELECT g || ' ' || repeat(md5(g::text), 7)"
                " FROM generate_series(1, %s) g",
                (rows,),
            )
            db_size = conn.execute("SELECT pg_database_size('bench')").fetchone()[0]  # type: ignore[index]
        print(f"\nPostgreSQL, {db_size / 1e6:.0f} MB, {rows} rows")
        database = PostgresDatabase(url)
        env = database._env()  # the same connection settings shiplane uses
        plain = work / "plain.dump"
        base = timed(
            lambda: subprocess.run(
                ["pg_dump", "--format=custom", "--no-owner", "--file", str(plain)],
                env=env,
                check=True,
            )
        )
        row("pg_dump -Fc (plain)", base, plain.stat().st_size)
        manifest: dict[str, object] = {}
        seconds = timed(lambda: manifest.update(create_backup(database, work / "pb", {})))
        row(
            "shiplane backup (pg_dump -Fc + sha256)",
            seconds,
            size(work / "pb" / str(manifest["id"])),
            base,
        )
        plain_restore = timed(
            lambda: subprocess.run(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    "--dbname",
                    "bench",
                    str(plain),
                ],
                env=env,
                check=True,
            )
        )
        row("pg_restore --clean --single-transaction (plain)", plain_restore, None)
        restore = timed(lambda: restore_backup(work / "pb" / str(manifest["id"]), database))
        row("shiplane restore (sha256, pg_restore, checks)", restore, None, plain_restore)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shiplane-bench-") as scratch:
        work = Path(scratch)
        os.chmod(work, 0o755)
        print(f"{'what':46} {'time':>9} {'ratio':>7}  {'size':>11}")
        bench_sqlite(work, args.mb)
        bench_postgres(work, args.mb)


if __name__ == "__main__":
    main()
