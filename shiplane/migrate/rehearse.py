"""Rehearsal: up -> down -> up on a copy of the database, before the real one is touched."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from shiplane.errors import MigrationError
from shiplane.migrate.files import Migration
from shiplane.migrate.runner import SqliteMigrator
from shiplane.migrate.schema import fingerprint


def copy_database(source: Path, target: Path) -> None:
    dest = sqlite3.connect(target)
    try:
        if source.exists():
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
            try:
                src.backup(dest)
            finally:
                src.close()
    finally:
        dest.close()


def rehearse(db_path: Path, migrations: list[Migration]) -> dict[str, Any]:
    """Raises MigrationError when a pending migration fails up, down, or the round trip."""
    with tempfile.TemporaryDirectory(prefix="shiplane-rehearsal-") as scratch:
        copy = Path(scratch) / "rehearsal.db"
        copy_database(db_path, copy)
        migrator = SqliteMigrator(copy)
        plan = migrator.plan(migrations)
        if not plan.pending:
            return {"pending": [], "summary": "nothing pending"}
        before = fingerprint(copy)
        applied_before = max((a["version"] for a in plan.applied), default=0)
        migrator.up(migrations)
        after = fingerprint(copy)
        one_way = [m.label for m in plan.pending if m.irreversible]
        if one_way:
            return {
                "pending": [m.label for m in plan.pending],
                "irreversible": one_way,
                "summary": f"up ok; {', '.join(one_way)} irreversible: rollback restores backup",
            }
        missing = [m.label for m in plan.pending if not m.has_down()]
        if missing:
            raise MigrationError(
                f"{', '.join(missing)} has no down and is not declared irreversible",
                step="rehearse",
                next_action="write its down, or mark it irreversible "
                "(-- shiplane: irreversible / IRREVERSIBLE = True)",
            )
        migrator.down(migrations, to=applied_before)
        reverted = fingerprint(copy)
        if reverted != before:
            raise MigrationError(
                f"down of {', '.join(m.label for m in plan.pending)} does not restore the schema "
                f"(fingerprint {reverted} after down, {before} before up)",
                step="rehearse",
                next_action="fix the down migration so it undoes exactly what up did",
            )
        migrator.up(migrations)
        if fingerprint(copy) != after:
            raise MigrationError("up after down gives another schema than the first up",
                                 step="rehearse")  # fmt: skip
        return {
            "pending": [m.label for m in plan.pending],
            "fingerprints": {"before": before, "after": after},
            "summary": f"up -> down -> up ok for {len(plan.pending)} migration(s)",
        }
