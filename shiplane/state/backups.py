"""Copies of an app's state.db, taken online (SQLite's backup API) after every deployment, every
verification or promotion decision and every change of a pin, into ``state-backups/`` beside
it; the newest ``keep`` stay.

A copy is written aside and renamed into place, so a listed copy is always whole; it is
checked (``integrity.is_sane``) before it is offered for a restore.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from shiplane.state import integrity
from shiplane.state.db import StateDB

log = logging.getLogger("shiplane.state")

DEFAULT_KEEP = 10
KEEP_VARIABLE = "SHIPLANE_STATE_BACKUPS"  # how many copies to keep (default 10)


def keep_from_env() -> int:
    raw = os.environ.get(KEEP_VARIABLE, "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_KEEP


def take(path: Path, keep: int | None = None) -> Path:
    """Copy the state.db at ``path`` (a consistent snapshot, writers carry on) and prune."""
    directory = integrity.backups_dir(path)
    directory.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = directory / f"{path.stem}-{stamp}.db"
    scratch = directory / f".{target.name}.part"
    source = integrity.read_only(path)
    try:
        os.close(os.open(scratch, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
        copy = sqlite3.connect(scratch)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            copy.close()
        os.replace(scratch, target)
    finally:
        source.close()
        scratch.unlink(missing_ok=True)
    prune(path, keep if keep is not None else keep_from_env())
    return target


def listed(path: Path) -> list[Path]:
    """The copies of the state.db at ``path``, newest first."""
    directory = integrity.backups_dir(path)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{path.stem}-*.db"), key=lambda p: p.name, reverse=True)


def newest_sane(path: Path) -> Path | None:
    """The newest copy that passes SQLite's check (a damaged copy is skipped, not offered)."""
    return next((copy for copy in listed(path) if integrity.is_sane(copy)), None)


def prune(path: Path, keep: int) -> list[str]:
    gone = []
    for old in listed(path)[keep:]:
        old.unlink(missing_ok=True)
        gone.append(old.name)
    return gone


Mark = tuple[object, ...]


def changes(db: StateDB) -> Mark:
    """What a copy follows: the deployments (started, finished), the verifications (promotion
    evidence), the promotions' decisions and the pins."""
    row = db.conn.execute(
        "SELECT (SELECT COUNT(*) FROM deployments), (SELECT MAX(started_at) FROM deployments),"
        " (SELECT MAX(finished_at) FROM deployments),"
        " (SELECT SUM(status = 'running') FROM deployments),"
        " (SELECT COUNT(*) FROM verifications),"
        " (SELECT COUNT(*) || '/' || COALESCE(MAX(decided_at), '') FROM promotions),"
        " (SELECT group_concat(env || settings || pinned_at || pinned_by, '|') FROM pins)"
    ).fetchone()
    return tuple(row)


def after(db: StateDB, before: Mark) -> str | None:
    """A copy of ``db`` when a deployment or a pin changed since ``before``. A copy that
    cannot be taken costs a warning (returned), never the operation."""
    try:
        if changes(db) == before:
            return None
        take(db.path)
    except (OSError, sqlite3.Error) as exc:
        log.warning("no copy of %s: %s", db.path, exc)
        return f"state.db could not be copied to {integrity.backups_dir(db.path)}: {exc}"
    return None
