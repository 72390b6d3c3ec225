"""Rehearsal: up -> down -> up on a copy of the database, before the real one is touched."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from shiplane.databases import Database
from shiplane.errors import MigrationError
from shiplane.migrate.base import MigrationEngine, MigrationSource
from shiplane.migrate.runner import Migrator


def rehearse(
    database: Database,
    migrations: Sequence[MigrationSource],
    make_engine: Callable[[Database], MigrationEngine] = Migrator,
) -> dict[str, Any]:
    """Raises MigrationError when a pending migration fails up, down, or the round trip.

    What the engine cannot do is skipped and said in the summary: the pre-deploy backup is
    then what a rollback falls back on. ``up_seconds`` is how long the first ``up`` took on
    the copy: what a held deploy's budget is measured against."""
    live = make_engine(database)
    capabilities = live.capabilities
    if not capabilities.rehearse:
        return {
            "pending": [m.label for m in live.plan(migrations).pending],
            "skipped": True,
            "summary": f"the {live.name} engine cannot rehearse on a copy: rollback restores "
            "the backup",
        }
    with database.scratch_copy() as copy:
        engine = make_engine(copy)
        plan = engine.plan(migrations)
        if not plan.may_change:
            return {"pending": [], "summary": "nothing pending"}

        def fingerprint() -> str:
            # The engine's own books are not the app's schema: `alembic downgrade base`
            # leaves an empty alembic_version table behind, and that is a perfect round trip.
            return copy.fingerprint(ignore=engine.bookkeeping)

        before = fingerprint()
        position = engine.position(migrations)
        started = time.monotonic()
        engine.up(migrations)
        up_seconds = round(time.monotonic() - started, 3)
        after = fingerprint()
        pending = [m.label for m in plan.pending] or ["(what the engine's up applies)"]
        if not capabilities.revert:
            return {
                "pending": pending,
                "up_seconds": up_seconds,
                "summary": f"up ok; the {engine.name} engine cannot revert: rollback restores "
                "the backup",
            }
        one_way = [m.label for m in plan.pending if m.irreversible]
        if one_way:
            return {
                "pending": pending,
                "up_seconds": up_seconds,
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
        engine.revert_to(migrations, position)
        reverted = fingerprint()
        if reverted != before:
            raise MigrationError(
                f"down of {', '.join(pending)} does not restore the schema "
                f"(fingerprint {reverted} after down, {before} before up)",
                step="rehearse",
                next_action="fix the down migration so it undoes exactly what up did",
            )
        engine.up(migrations)
        if fingerprint() != after:
            raise MigrationError(
                "up after down gives another schema than the first up", step="rehearse"
            )
        return {
            "pending": pending,
            "up_seconds": up_seconds,
            "fingerprints": {"before": before, "after": after},
            "summary": f"up -> down -> up ok for {len(plan.pending) or 'the'} migration(s)",
        }
