"""`shiplane rollback ENV [--to RELEASE|SHA] [--restore-db]`: back to an earlier release."""

from __future__ import annotations

from typing import Any

from shiplane.operations.execute import execute, make_context
from shiplane.operations.session import Session
from shiplane.pipeline.steps_rollback import choose_target
from shiplane.results import Result


def rollback(
    session: Session, env: str, to: str | None, restore_db: bool, discard_writes: bool = False
) -> Result:
    choose_target(session.db, env, to)  # bad input is refused before anything is recorded
    options = {
        "to": to,
        "restore_db": restore_db,
        "discard_writes": discard_writes,
        "backup": True,
    }
    ctx = make_context(session, env, "rollback", options)
    result = execute(ctx, "rollback")
    steps = session.db.steps(ctx.deployment_id)
    migrate = next((s for s in steps if s["name"] == "migrate"), None)
    switch = next((s for s in steps if s["name"] == "switch"), None)
    database = _database_summary(migrate["data"] if migrate else {})
    database["hold_seconds"] = switch["data"].get("hold_seconds") if switch else None
    result.data.update(
        sha=ctx.facts.sha,
        release=ctx.facts.release,
        database=database,
        recovered=session.recovered,
    )
    return result


def _database_summary(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": data.get("action", "none"),
        "reverted": data.get("reverted", []),
        "restored_backup": data.get("restore_from") if data.get("action") == "restore" else None,
        "why_restore": data.get("down_error"),
        # Why the schema was reverted: the checks the old release failed on it.
        "old_code_fails": data.get("old_code_fails", []),
        "pre_restore_backup": data.get("pre_restore_backup"),
        "discarded": data.get("discarded") or data.get("would_discard") or [],
        "discarded_backup": data.get("discarded_backup"),
    }
