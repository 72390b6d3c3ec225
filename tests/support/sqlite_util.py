"""Reading real SQLite files in assertions."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from shiplane.databases.sqlite import SqliteDatabase


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def dump(db: Path) -> list[str]:
    """The whole database as SQL text: equal dumps mean equal schema and rows."""
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def columns(db: Path, table: str) -> set[str]:
    return {row[1] for row in query(db, f"PRAGMA table_info({table})")}


def tables(db: Path) -> set[str]:
    return {row[0] for row in query(db, "SELECT name FROM sqlite_master WHERE type='table'")}


def database(path: Path) -> SqliteDatabase:
    return SqliteDatabase(f"sqlite:///{path}")
