"""`shiplane state restore [--from FILE]`: put a good copy of the app's state.db back (a
person's decision, with a factor).

What a copy must not roll back stays as it is now: tokens and approvers live in host.db, which
this never touches; the pins (the gate's protection) are carried over from the current
state.db when it can still be read, else from the newest good copy, which holds the latest
pins because every pin change leaves a copy (``shiplane.state.backups``). The state.db it
replaces is kept beside it (``state.db.damaged-<time>``), never deleted.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.errors import ConfigError, RefusedError, StateDamagedError
from shiplane.gate.challenges import Binding
from shiplane.operations.decide import person_decision
from shiplane.operations.session import Session
from shiplane.results import Result
from shiplane.state import backups, integrity, running
from shiplane.state.db import StateDB

# Tables a copy never brings back: the newest readable version wins.
KEPT_TABLES = ("pins",)


def state_restore(session: Session, source: str | None = None) -> Result:
    target = session.layout.state_db
    chosen = _source(target, source)
    busy = running.busy()
    if busy:
        raise RefusedError(
            f"the server is working on {', '.join(busy)}: state.db is not replaced under it",
            step="state",
            next_action="wait until it ends (`shiplane status`), then run it again",
        )
    decided = person_decision(session, Binding("state restore", ""))
    kept_from, kept = _kept_rows(target)
    scratch = target.with_name(f".{target.name}.restore-{secrets.token_hex(4)}")
    try:
        _copy(chosen, scratch, kept)
        aside = _set_aside(target)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    restored = StateDB(target)  # the schema of this version, added to an older copy
    try:
        deployments = restored.conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0]
    finally:
        restored.close()
    result = Result(command="state restore")
    result.data.update(
        restored_from=str(chosen),
        set_aside=str(aside) if aside else None,
        kept={"pins": str(kept_from) if kept_from else None},
        deployments=deployments,
        restored_by=decided.label,
    )
    if kept_from is None:
        result.warnings.append("no readable pins were found: the copy's pins were kept")
    return result


def _source(target: Path, source: str | None) -> Path:
    if source is not None:
        path = Path(source).expanduser()
        if not integrity.is_sane(path):
            raise ConfigError(
                f"{path} is not a good state.db copy (missing, damaged, or not SQLite)",
                step="usage",
                next_action=f"pick one from {integrity.backups_dir(target)}, or leave out --from",
            )
        return path.resolve()
    newest = backups.newest_sane(target)
    if newest is None:
        raise StateDamagedError(
            f"no good copy of {target} in {integrity.backups_dir(target)}",
            step="state",
            next_action="pass one with --from FILE; without any, move the damaged state.db "
            "aside by hand (history starts empty)",
        )
    return newest


def _kept_rows(target: Path) -> tuple[Path | None, dict[str, list[dict[str, Any]]]]:
    """The rows of ``KEPT_TABLES``: from ``target`` when it reads, else the newest good copy."""
    for candidate in (target, backups.newest_sane(target)):
        if candidate is None or not integrity.is_sane(candidate):
            continue
        conn = integrity.read_only(candidate)
        conn.row_factory = sqlite3.Row
        try:
            rows = {t: [dict(r) for r in conn.execute(f"SELECT * FROM {t}")] for t in KEPT_TABLES}
        except sqlite3.DatabaseError:
            continue
        finally:
            conn.close()
        return candidate, rows
    return None, {}


def _copy(source: Path, scratch: Path, kept: dict[str, list[dict[str, Any]]]) -> None:
    os.close(os.open(scratch, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    reader = integrity.read_only(source)
    copy = sqlite3.connect(scratch, isolation_level=None)
    try:
        reader.backup(copy)
        copy.execute("BEGIN IMMEDIATE")
        for table, rows in kept.items():
            copy.execute(f"DELETE FROM {table}")
            for row in rows:
                marks = ", ".join("?" for _ in row)
                copy.execute(
                    f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", [*row.values()]
                )
        copy.execute("COMMIT")
        copy.execute("PRAGMA journal_mode=WAL")
    finally:
        copy.close()
        reader.close()


def _set_aside(target: Path) -> Path | None:
    """Keep what is replaced (with its WAL: they belong together) for whoever looks later."""
    if not target.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = target.with_name(f"{target.name}.damaged-{stamp}")
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{target}{suffix}")
        if companion.exists():
            os.replace(companion, Path(f"{aside}{suffix}"))
    os.replace(target, aside)
    return aside
