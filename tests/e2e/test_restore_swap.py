"""PostgreSQL restores under database-level exclusion (issue 12, Must have 2): the backup goes
into a new database, the other sessions on the live one are ended, it is renamed aside and
compared again, and the new one is renamed into its place. Against the real PostgreSQL
server the suite starts."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from devtools.pgserver import PgServer
from shiplane.backup import create_backup, list_backups
from shiplane.backup.checked import checked_restore
from shiplane.backup.leftovers import clean
from shiplane.databases.postgresql import PostgresDatabase
from shiplane.errors import ConfigError, RefusedError


def fresh(postgres: PgServer, rows: int = 100) -> PostgresDatabase:
    database = PostgresDatabase(postgres.create_database(f"r_{secrets.token_hex(4)}"))
    with database.connect() as conn:
        conn.execute("CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL)")
        conn.execute(
            "INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, %s) g", (rows,)
        )
    return database


def insert(database: PostgresDatabase, name: str) -> None:
    with database.connect() as conn:
        conn.execute("INSERT INTO items (name) VALUES (%s)", (name,))


def count(database: PostgresDatabase) -> int:
    return int(database.rows("SELECT count(*) FROM items")[0][0])


def side_databases(postgres: PgServer, database: PostgresDatabase) -> list[str]:
    """The restore's copies of ``database`` still on the server (none once it is done)."""
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (database.name + "\\_%",),
        ).fetchall()
    return [str(r[0]) for r in rows]


def strays(backups: Path) -> list[str]:
    return sorted(
        p.name
        for p in backups.iterdir()
        if p.name.startswith(".") or not (p / "manifest.json").is_file()
    )


def test_swap_ends_other_sessions_and_leaves_no_copies(postgres: PgServer, tmp_path: Path) -> None:
    database, backups = fresh(postgres), tmp_path / "backups"
    backup_id = create_backup(database, backups, {"env": "t"})["id"]
    for i in range(10):
        insert(database, f"since {i}")
    # An app's session, idle on the live database: the rename could not happen under it.
    app = psycopg.connect(database.url, autocommit=True)
    try:
        with pytest.raises(RefusedError, match="items"):
            checked_restore(database, backups, backup_id, env="t", discard_writes=False)
        assert count(database) == 110 and len(list_backups(backups)) == 1
        outcome = checked_restore(database, backups, backup_id, env="t", discard_writes=True)
        with pytest.raises(psycopg.OperationalError):
            app.execute("SELECT 1")  # ended before the swap
    finally:
        app.close()
    assert count(database) == 100
    assert outcome["written_since"] == ["items (100 rows in the backup, 110 now)"]
    saved = next(m for m in list_backups(backups) if m["id"] == outcome["pre_restore_backup"])
    assert saved["reason"] == "pre-restore" and saved["tables"]["items"]["rows"] == 110
    assert side_databases(postgres, database) == [] and strays(backups) == []


class WriterDuringLoad(PostgresDatabase):
    """A client's write that commits after the first comparison, while the backup loads into
    the new database: only the comparison after the other sessions ended can see it."""

    def load_into(self, archive: Path, database: str) -> None:
        super().load_into(archive, database)
        if database != self.name:
            insert(self, "late")


def test_write_after_the_first_comparison_is_caught(postgres: PgServer, tmp_path: Path) -> None:
    plain, backups = fresh(postgres), tmp_path / "backups"
    database = WriterDuringLoad(plain.url)
    backup_id = create_backup(database, backups, {"env": "t"})["id"]
    with pytest.raises(RefusedError, match=r"items \(100 rows in the backup, 101 now\)"):
        checked_restore(database, backups, backup_id, env="t", discard_writes=False)
    # Put back as it was, with the late write, under its own name; no copy left.
    assert database.rows("SELECT name FROM items WHERE name = 'late'") == [["late"]]
    assert side_databases(postgres, database) == [] and strays(backups) == []

    # With --discard-writes, what the late write left is saved in a pre-restore backup taken
    # from the database as it was frozen, not the one taken before it.
    outcome = checked_restore(database, backups, backup_id, env="t", discard_writes=True)
    saved = next(m for m in list_backups(backups) if m["id"] == outcome["pre_restore_backup"])
    assert saved["tables"]["items"]["rows"] == 102  # the first call's late row and this one
    assert count(database) == 100
    assert side_databases(postgres, database) == [] and strays(backups) == []


def test_without_createdb_exits_64_naming_the_fix(postgres: PgServer, tmp_path: Path) -> None:
    role, password = f"app_{secrets.token_hex(3)}", secrets.token_hex(8)
    name = f"nocreate_{secrets.token_hex(3)}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' NOCREATEDB")
        conn.execute(f"CREATE DATABASE {name} OWNER {role}")
    database = PostgresDatabase(f"postgresql://{role}:{password}@127.0.0.1:{postgres.port}/{name}")
    with database.connect() as conn:
        conn.execute("CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL)")
    backups = tmp_path / "backups"
    backup_id = create_backup(database, backups, {"env": "t"})["id"]
    with pytest.raises(ConfigError) as caught:
        checked_restore(database, backups, backup_id, env="t", discard_writes=True)
    assert caught.value.exit_code == 64
    assert "no CREATEDB" in caught.value.message
    assert f"ALTER ROLE {role} CREATEDB" in (caught.value.next_action or "")
    assert [m["id"] for m in list_backups(backups)] == [backup_id]  # nothing written


KILLED_RESTORE = """
import os, sys
from pathlib import Path
from shiplane.backup.checked import checked_restore
from shiplane.databases.postgresql import PostgresDatabase
from shiplane.faultpoints import FAULT

FAULT.set("restore-swap:sigkill")
database = PostgresDatabase(os.environ["RESTORE_URL"])
checked_restore(database, Path(sys.argv[1]), sys.argv[2], env="t", discard_writes=True)
"""


def test_killed_between_the_renames_is_put_back(postgres: PgServer, tmp_path: Path) -> None:
    database, backups = fresh(postgres), tmp_path / "backups"
    backup_id = create_backup(database, backups, {"env": "t"})["id"]
    insert(database, "since")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RESTORE, str(backups), backup_id],
        env={**os.environ, "RESTORE_URL": database.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert not database.exists()  # killed with the live database renamed aside
    assert len(side_databases(postgres, database)) == 2

    # What recovery runs: the old database back under its name (the restore had not
    # swapped), the copies dropped, the scratch removed; a prune alone leaves it for that.
    clean(backups)
    assert not database.exists()
    done = clean(backups, database)
    assert any("back" in line for line in done), done
    assert count(database) == 101
    assert side_databases(postgres, database) == [] and strays(backups) == []


def test_backup_from_before_the_database_swaps_in_an_empty_one(
    postgres: PgServer, tmp_path: Path
) -> None:
    database, backups = PostgresDatabase(postgres.url(f"r_{secrets.token_hex(4)}")), tmp_path / "b"
    empty = create_backup(database, backups, {"env": "t"})
    assert empty["empty"] is True
    postgres.create_database(database.name)
    insert_table = "CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL)"
    with database.connect() as conn:
        conn.execute(insert_table)
    insert(database, "written")
    with pytest.raises(RefusedError, match="a table the backup does not have"):
        checked_restore(database, backups, empty["id"], env="t", discard_writes=False)
    checked_restore(database, backups, empty["id"], env="t", discard_writes=True)
    assert database.exists() and database.tables() == set()
    assert side_databases(postgres, database) == [] and strays(backups) == []


def test_sessions_of_another_role_name_the_grant(postgres: PgServer, tmp_path: Path) -> None:
    """The restoring role may not end the app role's sessions: exit 64 naming the grant, and
    the live database stays as it was, under its name."""
    owner, app, password = f"o_{secrets.token_hex(3)}", f"a_{secrets.token_hex(3)}", "pw"
    name = f"roles_{secrets.token_hex(3)}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {owner} LOGIN PASSWORD '{password}' CREATEDB")
        conn.execute(f"CREATE ROLE {app} LOGIN PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE {name} OWNER {owner}")
    base = f"127.0.0.1:{postgres.port}/{name}"
    database = PostgresDatabase(f"postgresql://{owner}:{password}@{base}")
    with database.connect() as conn:
        conn.execute("CREATE TABLE items (id SERIAL PRIMARY KEY, name TEXT NOT NULL)")
    backups = tmp_path / "backups"
    backup_id = create_backup(database, backups, {"env": "t"})["id"]
    with psycopg.connect(f"postgresql://{app}:{password}@{base}", autocommit=True) as session:
        with pytest.raises(ConfigError) as caught:
            checked_restore(database, backups, backup_id, env="t", discard_writes=False)
        assert session.execute("SELECT 1").fetchone() == (1,)  # still connected
    assert caught.value.exit_code == 64
    assert "GRANT pg_signal_backend" in (caught.value.next_action or "")
    assert database.exists() and database.tables() == {"items"}
    assert side_databases(postgres, database) == [] and strays(backups) == []
