"""How long a checked PostgreSQL restore takes, and how long the live database's name is away
(renamed aside for the comparison under exclusion, until the new one takes its place): the
window in which the app cannot connect (inside a rollback's hold, requests wait instead).

Run: .venv/bin/python bench/restore_swap.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.pgserver import pg_server
from shiplane.backup import create_backup
from shiplane.backup.checked import checked_restore
from shiplane.databases import postgres_swap
from shiplane.databases.postgresql import PostgresDatabase


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    rows = parser.parse_args().rows
    marks: dict[str, float] = {}
    freeze, settle = postgres_swap._freeze, postgres_swap.settle

    def timed_freeze(*args: Any) -> bool:
        result = freeze(*args)
        marks["aside"] = time.perf_counter()
        return result

    def timed_settle(*args: Any) -> str | None:
        marks.setdefault("back", time.perf_counter())
        return settle(*args)

    postgres_swap._freeze = timed_freeze  # type: ignore[assignment]
    postgres_swap.settle = timed_settle  # type: ignore[assignment]
    with pg_server(free_port()) as server, tempfile.TemporaryDirectory() as tmp:
        database = PostgresDatabase(server.create_database(f"bench_{secrets.token_hex(3)}"))
        with database.connect() as conn:
            conn.execute("CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT, body TEXT)")
            conn.execute(
                "INSERT INTO items (name, body) SELECT 'item ' || g, repeat('x', 100)"
                " FROM generate_series(1, %s) g",
                (rows,),
            )
        started = time.perf_counter()
        backup = create_backup(database, Path(tmp), {"env": "bench"})
        backed_up = time.perf_counter() - started
        with database.connect() as conn:
            conn.execute("INSERT INTO items (name) VALUES ('since')")
        started = time.perf_counter()
        checked_restore(database, Path(tmp), backup["id"], env="bench", discard_writes=True)
        restored = time.perf_counter() - started
    print(
        f"rows={rows} backup={backed_up:.2f}s checked_restore={restored:.2f}s "
        f"live name away={marks['back'] - marks['aside']:.3f}s"
    )


if __name__ == "__main__":
    main()
