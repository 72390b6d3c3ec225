"""Rehearsal: up -> down -> up on a copy of the database, before the real one is touched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shiplane.databases import Database
from shiplane.errors import MigrationError
from shiplane.migrate.runner import Migrator


def rehearse(
    database: Database,
    migrations: list[Any],
    make_migrator: Callable[[Database], Any] = Migrator,
) -> dict[str, Any]:
    """Raises MigrationError when a pending migration fails up, down, or the round trip."""
    with database.scratch_copy() as copy:
        migrator = make_migrator(copy)
        plan = migrator.plan(migrations)
        if not plan.pending:
            return {"pending": [], "summary": "nothing pending"}
        before = copy.fingerprint()
        applied_before = max((a["version"] for a in plan.applied), default=0)
        migrator.up(migrations)
        after = copy.fingerprint()
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
        reverted = copy.fingerprint()
        if reverted != before:
            raise MigrationError(
                f"down of {', '.join(m.label for m in plan.pending)} does not restore the schema "
                f"(fingerprint {reverted} after down, {before} before up)",
                step="rehearse",
                next_action="fix the down migration so it undoes exactly what up did",
            )
        migrator.up(migrations)
        if copy.fingerprint() != after:
            raise MigrationError("up after down gives another schema than the first up",
                                 step="rehearse")  # fmt: skip
        return {
            "pending": [m.label for m in plan.pending],
            "fingerprints": {"before": before, "after": after},
            "summary": f"up -> down -> up ok for {len(plan.pending)} migration(s)",
        }
