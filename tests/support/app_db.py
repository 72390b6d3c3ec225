"""The database an app under test writes to, read the same way on SQLite and PostgreSQL: the
matrix's assertions (every acknowledged id present, the schema the JSON names) run unchanged
on both."""

from __future__ import annotations

import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from devtools.pgserver import PgServer

DATABASES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class AppDb:
    """A SQLite file (``path``) or a PostgreSQL database (``url``, with its password)."""

    path: Path | None = None
    url: str | None = None

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.path is not None:
            conn = sqlite3.connect(self.path)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()
        assert self.url is not None
        with psycopg.connect(self.url) as pg:
            return pg.execute(sql).fetchall()

    def execute(self, sql: str) -> None:
        if self.path is not None:
            conn = sqlite3.connect(self.path)
            try:
                conn.execute(sql)
                conn.commit()
            finally:
                conn.close()
            return
        assert self.url is not None
        with psycopg.connect(self.url) as pg:
            pg.execute(sql)

    def scalar(self, sql: str) -> Any:
        return self.rows(sql)[0][0]

    def columns(self, table: str) -> set[str]:
        if self.path is not None:
            return {row[1] for row in self.rows(f"PRAGMA table_info({table})")}
        found = self.rows(
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = 'public' AND table_name = '{table}'"
        )
        return {row[0] for row in found}

    def tables(self) -> set[str]:
        if self.path is not None:
            return {r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type='table'")}
        found = self.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in found}

    def missing(self, ids: list[int], table: str = "notes") -> set[int]:
        """The acknowledged ``ids`` that are not in ``table``: must stay empty."""
        return set(ids) - {row[0] for row in self.rows(f"SELECT id FROM {table}")}


def use_postgres(
    config: Path, postgres: PgServer, envs: tuple[str, ...] = ("dev", "prod")
) -> dict[str, AppDb]:
    """Point each environment of ``config`` (a shiplane.toml) at a new PostgreSQL database. The
    password stays out of the repository: the URL names ``${DB_PASSWORD}``, which each
    environment's env file (``.env.<env>``, git-ignored beside ``config``) holds."""
    text = config.read_text()
    found = {}
    for env in envs:
        name = f"{env}_{secrets.token_hex(4)}"
        postgres.create_database(name)
        url = f"postgresql://postgres:${{DB_PASSWORD}}@127.0.0.1:{postgres.port}/{name}"
        text, count = re.subn(
            rf"(?m)^\[environments\.{env}\]\n",
            f'[environments.{env}]\nenv_file = ".env.{env}"\ndatabase.url = "{url}"\n',
            text,
        )
        assert count == 1, f"no [environments.{env}] in {config}"
        (config.parent / f".env.{env}").write_text(f"DB_PASSWORD={postgres.password}\n")
        found[env] = AppDb(url=postgres.url(name))
    config.write_text(text)
    exclude = config.parent / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a") as out:
        out.write("".join(f".env.{env}\n" for env in envs))
    return found
