"""A restore that never discards a write silently: compare the live database with the backup
first; refuse (exit 6, naming the tables) when it was written since, unless the caller says
``--discard-writes``; save what it discards as a ``pre-restore`` backup before overwriting.

SQLite compares and restores under one ``BEGIN IMMEDIATE`` (databases/sqlite.py
``exclusive``): the app's writers wait on their busy timeout instead of slipping in between.
PostgreSQL loads into a new database, ends the other sessions on the live one, renames it
aside, compares it again (``before_swap``) and renames the new one in
(databases/postgres_swap.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from shiplane.backup.archive import create_backup, read_manifest, restore_backup
from shiplane.backup.encrypt import identity_of
from shiplane.config.encryption import BackupEncryption
from shiplane.databases import Database
from shiplane.databases.content import written_since
from shiplane.errors import RefusedError


def changes_since(database: Database, backup_dir: Path, ignore: Sequence[str] = ()) -> list[str]:
    """What a restore of ``backup_dir`` would discard, one line per table ([] = nothing)."""
    tables = read_manifest(backup_dir).get("tables")
    if tables is None:
        return ["(the backup has no per-table checksums: cannot tell what changed)"]
    return written_since(tables, database, ignore)


def checked_restore(
    database: Database,
    backups_dir: Path,
    backup_id: str,
    *,
    env: str,
    discard_writes: bool,
    ignore: Sequence[str] = (),
    encryption: BackupEncryption | None = None,
    quiesce: AbstractContextManager[object] | None = None,
) -> dict[str, Any]:
    """Compare, refuse or save, restore: {"restored", "written_since", "pre_restore_backup"}.
    ``quiesce`` is held around it all: the app's workers stop first and start again after."""
    directory = backups_dir / backup_id
    database.check_restore()  # a missing privilege, before anything is written
    with quiesce or nullcontext(), database.exclusive():
        written = changes_since(database, directory, ignore)
        if written and not discard_writes:
            raise _refusal(database, backup_id, env, written)
        safety = create_backup(
            database, backups_dir, {"env": env, "reason": "pre-restore"}, encryption
        )
        outcome: dict[str, Any] = {"written_since": written, "pre_restore_backup": safety["id"]}

        def before_swap(frozen: Database) -> None:
            # PostgreSQL: no other session reaches the old database any more, and none can
            # until the swap: one comparison (a full read) per path keeps that window short.
            # A write that committed after the first comparison counts as much as one before.
            if not discard_writes:
                again = changes_since(frozen, directory, ignore)
                if again:
                    raise _refusal(database, backup_id, env, again)
            elif written_since(safety["tables"], frozen, ignore):
                # Written after the pre-restore backup: that one lacks it, take it again.
                later = create_backup(
                    frozen, backups_dir, {"env": env, "reason": "pre-restore"}, encryption
                )
                outcome["pre_restore_backup"] = later["id"]
                outcome["written_since"] = changes_since(frozen, directory, ignore)

        manifest = restore_backup(directory, database, identity_of(encryption), before_swap)
    return {"restored": manifest, **outcome}


def _refusal(database: Database, backup_id: str, env: str, written: list[str]) -> RefusedError:
    return RefusedError(
        f"{database.describe()} was written since backup {backup_id}: "
        + "; ".join(written)
        + ". Restoring it would discard those writes",
        step="restore",
        next_action=f"keep the data; or add --discard-writes (they are saved first as a "
        f"pre-restore backup in `shiplane backups {env}`)",
    )
