"""PostgreSQL: psycopg for queries, a session advisory lock around migrations, pg_dump -Fc and
pg_restore for backups. Connection details reach pg_dump through PG* variables, never argv."""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

from shiplane.databases import postgres_swap
from shiplane.databases.base import MIGRATIONS_TABLE, Database
from shiplane.errors import ConfigError, MigrationError

LOCK_KEY = 0x5348_4950  # "SHIP": one advisory lock for shiplane migrations per database
LOCK_WAIT = 30.0
TOOL_TIMEOUT = 3600


class PostgresDatabase(Database):
    kind = "postgresql"
    placeholder = "%s"
    archive_name = "database.dump"

    def __init__(self, url: str, lock_wait: float = LOCK_WAIT) -> None:
        super().__init__(url)
        self.parts = urlsplit(url)
        self.name = unquote(self.parts.path.lstrip("/"))
        self.lock_wait = lock_wait

    def describe(self) -> str:
        host = self.parts.hostname or "localhost"
        return (
            f"postgresql {self.parts.username or ''}@{host}:{self.parts.port or 5432}/{self.name}"
        )

    def _with_db(self, name: str) -> str:
        return urlunsplit(self.parts._replace(path="/" + name))

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._with_db("postgres"), autocommit=True, connect_timeout=10)

    def exists(self) -> bool:
        with self._admin() as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,))
            return row.fetchone() is not None

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=10, application_name=_app_name()
        )

    @contextmanager
    def transaction(self, conn: Any) -> Iterator[None]:
        self._lock(conn)
        try:
            with conn.transaction():
                yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    @contextmanager
    def advisory_lock(self, conn: Any) -> Iterator[None]:
        self._lock(conn)
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))

    def _lock(self, conn: Any) -> None:
        deadline = time.monotonic() + self.lock_wait
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise MigrationError(
                    f"another migration holds the lock on {self.describe()} "
                    f"({self._holder(conn)}); waited {self.lock_wait:g}s",
                    step="migrate",
                    next_action="wait for it to finish, then retry",
                )
            time.sleep(0.2)

    @staticmethod
    def _holder(conn: Any) -> str:
        row = conn.execute(
            "SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"
            " AND l.objid = %s AND l.granted LIMIT 1",
            (LOCK_KEY & 0xFFFFFFFF,),
        ).fetchone()
        if row is None:
            return "holder unknown"
        return f"pid {row[0]}, {row[1] or 'no application_name'}, from {row[2] or 'local'}"

    def schema_sql(self, ignore: Collection[str] = ()) -> list[str]:
        # Table names come from engines' constants, never from input; quoted all the same.
        skip = ", ".join("'" + t.replace("'", "''") + "'" for t in (MIGRATIONS_TABLE, *ignore))
        columns = self.rows(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')"
            f" FROM information_schema.columns WHERE table_schema = 'public'"
            f" AND table_name NOT IN ({skip})"
        )
        indexes = self.rows(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
            f" AND tablename NOT IN ({skip})"
        )
        return sorted(
            [f"column {t}.{c}: {d} null={n} default={x}" for t, c, d, n, x in columns]
            + [f"index {name}: {definition}" for name, definition in indexes]
        )

    def rows(self, sql: str) -> list[list[Any]]:
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            conn.read_only = True
            return [list(r) for r in conn.execute(sql).fetchall()]

    def columns(self, table: str) -> set[str]:
        with psycopg.connect(self.url, connect_timeout=10) as conn:
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = %s",
                (table,),
            ).fetchall()
        return {r[0] for r in rows}

    def tables(self) -> set[str]:
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE'"
        )
        return {str(r[0]) for r in rows}

    def _env(self, database: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.parts.hostname or "localhost",
            PGPORT=str(self.parts.port or 5432),
            PGDATABASE=database or self.name,
            PGCONNECT_TIMEOUT="10",
        )
        if self.parts.username:
            env["PGUSER"] = unquote(self.parts.username)
        if self.parts.password:
            env["PGPASSWORD"] = unquote(self.parts.password)
        return env

    def _tool(self, argv: list[str], env: dict[str, str]) -> None:
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
        if proc.returncode != 0:
            raise OSError(f"{argv[0]} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")

    def dump(self, archive: Path) -> None:
        os.close(os.open(archive, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        self._tool(
            ["pg_dump", "--format=custom", "--no-owner", "--file", str(archive)], self._env()
        )

    def load(
        self,
        archive: Path,
        workdir: Path | None = None,
        before_swap: Callable[[Database], None] | None = None,
    ) -> None:
        """Into a new database, swapped in by renames once no other session can reach the
        live one (databases/postgres_swap.py)."""
        postgres_swap.load_and_swap(self, archive, workdir or archive.parent, before_swap)

    def check_restore(self) -> None:
        postgres_swap.check_privileges(self)

    def settle(self, record: dict[str, object]) -> str | None:
        return postgres_swap.settle(self, record)

    def renamed(self, name: str) -> PostgresDatabase:
        """The same server and credentials, another database."""
        return PostgresDatabase(self._with_db(name), lock_wait=self.lock_wait)

    def load_into(self, archive: Path, database: str) -> None:
        """pg_restore ``archive`` into ``database`` as one transaction."""
        self._tool(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--dbname",
                database,
                str(archive),
            ],
            self._env(database),
        )

    def clear(
        self,
        workdir: Path | None = None,
        before_swap: Callable[[Database], None] | None = None,
    ) -> None:
        if workdir is not None:  # a checked restore: an empty database swapped in
            postgres_swap.load_and_swap(self, None, workdir, before_swap)
            return
        with self.connect() as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")

    def integrity(self) -> str:
        self.rows("SELECT count(*) FROM pg_class")
        return "ok"

    @contextmanager
    def scratch_copy(self) -> Iterator[Database]:
        # CREATE DATABASE ... TEMPLATE needs no other session on the source; the app has one,
        # so the copy goes through pg_dump and pg_restore.
        name = f"{self.name}_rehearse_{secrets.token_hex(3)}"
        try:
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.errors.InsufficientPrivilege as exc:
            # A configuration matter, not a migration failure: say which of the two fixes.
            user = urlsplit(self.url).username or "the database user"
            raise ConfigError(
                f"rehearsing migrations needs a scratch database, and {user} may not create one"
                " (no CREATEDB)",
                step="rehearse",
                next_action=f"GRANT it: ALTER ROLE {user} CREATEDB; or set rehearse = false for"
                " this environment in shiplane.toml (the pre-deploy backup stays)",
            ) from exc
        try:
            with tempfile.TemporaryDirectory(prefix="shiplane-rehearsal-") as scratch:
                archive = Path(scratch) / "copy.dump"
                self.dump(archive)
                self.load_into(archive, name)
            yield self.renamed(name)
        finally:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _app_name() -> str:
    return f"shiplane pid {os.getpid()}"
