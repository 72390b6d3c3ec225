"""Whether a state.db can be trusted before anything opens it.

SQLite happily turns an empty file into a new, empty database: after a truncation that would
silently forget every release, verification and pin. So a state.db is opened only when it is
a SQLite file (its 16-byte header) of at least one page header, and a missing one is created
only when no copy of it was ever kept (``state-backups/`` beside it). Anything else is
``StateDamagedError`` (exit 7), naming the file and the way back: ``shiplane state restore``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shiplane.errors import StateDamagedError

MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100  # the database header: a file shorter than this is no database
BACKUP_DIR = "state-backups"
# SQLite's own words for a file that is not (or no longer) a database.
CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
RESTORE = "shiplane state restore"


def backups_dir(path: Path) -> Path:
    """Where the copies of the state.db at ``path`` are kept."""
    return path.parent / BACKUP_DIR


def damage(path: Path) -> str | None:
    """What is wrong with the file at ``path`` (None: it looks like a database, or is absent)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(HEADER_SIZE)
    except FileNotFoundError:
        return None
    if not header:
        return "it is empty (0 bytes)"
    if not header.startswith(MAGIC):
        return "its header is not SQLite's (the file was overwritten or is not a database)"
    if len(header) < HEADER_SIZE:
        return f"it is truncated ({len(header)} bytes)"
    return None


def check(path: Path) -> None:
    """Raise ``StateDamagedError`` unless ``path`` may be opened (or created) as a state.db."""
    problem = damage(path)
    if problem is None and not path.exists() and _has_copies(path):
        problem = "it is missing, while copies of it exist"
    if problem is not None:
        raise damaged(path, problem)


def damaged(path: Path, problem: str) -> StateDamagedError:
    if path.name != "state.db":
        # host.db (tokens, approvers) has no copies on purpose: a copy would bring back a
        # revoked token. Starting it afresh is a person's act.
        return StateDamagedError(
            f"{path} cannot be used: {problem}; it was left as it is",
            step="state",
            next_action=f"a person moves {path} aside, then creates the tokens and enrolls "
            "the approvers again (`shiplane approvers add`, `shiplane tokens create`)",
        )
    return StateDamagedError(
        f"state.db {path} cannot be used: {problem}; it was left as it is",
        step="state",
        next_action=f"a person runs `{RESTORE}` (the newest good copy from {backups_dir(path)})"
        f", or `{RESTORE} --from FILE`",
    )


def is_sane(path: Path) -> bool:
    """A full read of ``path``: header, then SQLite's own quick check of every page."""
    if damage(path) is not None or not path.is_file():
        return False
    try:
        conn = read_only(path)
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False
    return row is not None and row[0] == "ok"


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write, nor create ``path`` when it is missing."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30)


def _has_copies(path: Path) -> bool:
    directory = backups_dir(path)
    return directory.is_dir() and any(directory.glob(f"{path.stem}-*.db"))
