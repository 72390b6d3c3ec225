"""Database engines behind one interface (see base.py): SQLite and PostgreSQL."""

from __future__ import annotations

from string import Template

from shiplane.databases.base import EMPTY, MIGRATIONS_TABLE, Database
from shiplane.errors import ConfigError


def resolve_url(template: str, secrets: dict[str, str]) -> str:
    """``${NAME}`` in a database URL comes from the env file: passwords stay out of config."""
    resolved = Template(template).safe_substitute(secrets)
    if "${" in resolved:
        raise ConfigError(
            "database.url names a ${VARIABLE} the env file does not define",
            next_action="add it to the environment's env_file",
        )
    return resolved


def open_database(url: str) -> Database:
    if url.startswith("sqlite:///"):
        from shiplane.databases.sqlite import SqliteDatabase

        return SqliteDatabase(url)
    if url.startswith(("postgresql://", "postgres://")):
        from shiplane.databases.postgresql import PostgresDatabase

        return PostgresDatabase(url)
    raise ConfigError(f"unsupported database URL scheme in {url.split(':', 1)[0]!r}")


__all__ = ["EMPTY", "MIGRATIONS_TABLE", "Database", "open_database", "resolve_url"]
