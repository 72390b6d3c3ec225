"""`shiplane rollback ENV [--to RELEASE|SHA] [--restore-db]`: back to an earlier release."""

from __future__ import annotations

from typing import Any

from shiplane.gate.challenges import Binding
from shiplane.gate.guard import gated_envs, read_pins
from shiplane.operations.decide import person_decision
from shiplane.operations.execute import execute, make_context, refused_by_preflight
from shiplane.operations.session import Session
from shiplane.pipeline.steps_rollback import choose_target
from shiplane.results import Result


def rollback(
    session: Session,
    env: str,
    to: str | None,
    restore_db: bool,
    discard_writes: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    keep_schema: bool = False,
) -> Result:
    """``keep_schema`` (the server's watch): refuse, before any traffic moves, a rollback
    that would need a destructive schema change (a ``down`` or a restore)."""
    # Bad input is refused before anything is recorded.
    choose_target(session.db, env, to, config=session.loaded.config)
    if env in gated_envs(session.loaded, read_pins(session.db)) and (restore_db or discard_writes):
        # Putting an old database back discards writes: a person's decision in a gated env.
        person_decision(session, Binding("rollback", env, to or "", ""))
    options = {
        "to": to,
        "restore_db": restore_db,
        "discard_writes": discard_writes,
        "wait_drain": wait_drain,
        "backup": True,
        "hold_timeout": hold_timeout,
        "keep_schema": keep_schema and not restore_db,
    }
    ctx = make_context(session, env, "rollback", options)
    refused = refused_by_preflight(session, ctx, "rollback")
    if refused is not None:
        return refused
    result = execute(ctx, "rollback")
    steps = {s["name"]: s["data"] for s in session.db.steps(ctx.deployment_id)}
    database = _database_summary(steps.get("migrate") or {})
    database["hold_seconds"] = (steps.get("switch") or {}).get("hold_seconds")
    result.data.update(
        sha=ctx.facts.sha,
        release=ctx.facts.release,
        database=database,
        recovered=session.recovered,
        # Within the standby window: the warm instance served, nothing was started.
        standby=bool((steps.get("start") or {}).get("standby")),
        standby_reason=(steps.get("start") or {}).get("standby_reason"),
        switch_ms=_duration(session, ctx.deployment_id, "switch"),
        # What a later deploy must not bring back without --include-rolled-back.
        rolled_back=(steps.get("rewind") or {}).get("rolled_back", []),
        # Kept releases whose directory was gone: built again from their commit, or skipped.
        rebuilt=(steps.get("target") or {}).get("rebuilt", []),
        skipped=(steps.get("target") or {}).get("skipped", []),
    )
    result.warnings.extend(
        f"release {s['release']} is not on disk and cannot be built again ({s['why']}): "
        "skipped over it"
        for s in result.data["skipped"]
    )
    return result


def _duration(session: Session, deployment_id: str, step: str) -> int | None:
    """How long ``step`` of the deployment took (ms), as recorded."""
    record = next((s for s in session.db.steps(deployment_id) if s["name"] == step), None)
    return int(record["duration_ms"]) if record and record["duration_ms"] is not None else None


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
