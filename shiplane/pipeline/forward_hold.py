"""Forward migrations under the front door's hold (docs: "An acknowledged write is sacred").

A migration the serving code cannot run on (the lint finds a drop, a rename, a type change,
a NOT NULL column without a default) would make the old release fail every request between
the migrate step and the switch. Such a deploy, and every schema-changing deploy with
``[database] hold = true``, runs its window inside a hold: new requests wait at the front
door, in-flight ones finish, then migrate -> start the new release -> health -> verify ->
switch, and the switch releases the hold. Requests are answered late, never failed.

Whether the hold fits is decided in the guard step, before anything changes: the rehearsal's
measured ``up`` x SAFETY, plus the time this environment last took to start, check and verify
a release, must fit the hold budget (``--hold-timeout``, else the front door's configured
``hold_timeout``, else 30 s). Without a rehearsal there is nothing measured: the configured
budget is used as it is.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from shiplane.errors import RefusedError, ShiplaneError
from shiplane.migrate.lint import Finding
from shiplane.pipeline.context import Context
from shiplane.pipeline.schema_undo import hold_budget
from shiplane.targets.pausing import pause_workers, resume_workers

# Lint rules whose migration the old code may not run on (non-transactional is about how it
# runs, not about compatibility).
BREAKING = frozenset(
    {"drop-table", "drop-column", "rename", "type-change", "not-null-without-default"}
)
SAFETY = 2.0  # the real database is bigger and busier than the rehearsal's copy
DEFAULT_START = 5.0  # seconds to start, check and verify when no deploy here measured it
# The held steps after the migration whose time a previous deploy of the env measured.
HELD_STEPS = ("start", "health", "verify")


def configured(ctx: Context) -> bool:
    """``[environments.ENV.database] hold``, else ``[database] hold``."""
    override = ctx.settings.env_config.database.hold
    return ctx.config.database.hold if override is None else override


def breaking(findings: Sequence[Finding]) -> list[Finding]:
    """What makes the old code fail on the new schema. An annotated finding is the contract
    half of an expand/contract split: the serving release no longer uses what it changes."""
    return [f for f in findings if f.rule in BREAKING and not f.annotated]


def expected_start(ctx: Context) -> tuple[float, str | None]:
    """Seconds the env's last successful deploy (or rollback) took to start, check and verify
    its release, and that deployment's id; DEFAULT_START when none measured it."""
    for deployment in ctx.db.deployments(ctx.env, limit=20):
        if deployment["status"] != "succeeded" or deployment["id"] == ctx.deployment_id:
            continue
        steps = {s["name"]: s for s in ctx.db.steps(deployment["id"])}
        if not all(steps.get(n, {}).get("status") == "done" for n in ("start", "health")):
            continue
        millis = sum(int(steps[n]["duration_ms"] or 0) for n in HELD_STEPS if n in steps)
        return millis / 1000, str(deployment["id"])
    return DEFAULT_START, None


def decide(
    ctx: Context, may_change: bool, findings: Sequence[Finding], rehearsal: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The hold plan of this deploy (None: not held), or RefusedError (exit 6) when the
    measured migration will not fit the hold budget."""
    if not may_change:
        return None
    state = ctx.db.env_state(ctx.env)
    if not state or not state.get("release"):
        return None  # nothing serves yet: nobody waits, nobody fails
    found = breaking(findings)
    reasons = [f"{f.migration}: {f.message}" for f in found]
    if configured(ctx):
        reasons.append("database.hold = true")
    if not reasons:
        return None
    budget = hold_budget(ctx)
    plan: dict[str, Any] = {
        "reasons": reasons,
        "budget_seconds": budget,
        # The old code fails on the new schema: a switch back waits for the `down`.
        "old_code_fails": bool(found),
    }
    measured = (rehearsal or {}).get("up_seconds")
    if measured is None:
        # Nothing measured the migration: the configured budget is the plan.
        plan.update(estimate_seconds=None, reserve_seconds=round(budget * 0.2, 3))
        return plan
    start, source = expected_start(ctx)
    migration = float(measured) * SAFETY
    estimate = round(migration + start, 3)
    plan.update(
        migration_seconds=float(measured),
        start_seconds=round(start, 3),
        start_measured_by=source,
        estimate_seconds=estimate,
        # What the health wait leaves for a `down` inside the same hold, should it fail.
        reserve_seconds=round(migration, 3),
    )
    if estimate > budget:
        enough = math.ceil(estimate * 1.5)
        raise RefusedError(
            f"the held migration needs about {estimate:g}s ({measured:g}s measured on a copy "
            f"x {SAFETY:g}, plus {start:g}s to start, check and verify the release), more than "
            f"the {budget:g}s hold: requests waiting at the front door would fail",
            step="guard",
            next_action=f"give the hold more time (`--hold-timeout {enough}`, or "
            f"[environments.{ctx.env}.front_door] hold_timeout = {enough}), or split the "
            "migration expand/contract: an additive release the old code runs on, then the "
            "destructive half annotated `-- shiplane: expand-contract`",
        )
    return plan


def health_timeout(ctx: Context, timeout: float) -> float:
    """Inside a hold the new release must be healthy in time for a ``down`` to still fit the
    budget: ``timeout`` shortened to what is left of it."""
    plan = ctx.facts.hold_plan
    if ctx.facts.hold_started is None or plan is None:
        return timeout
    elapsed = time.monotonic() - ctx.facts.hold_started
    left = float(plan["budget_seconds"]) - elapsed - float(plan["reserve_seconds"])
    return max(0.5, min(timeout, left))


def take(ctx: Context) -> bool:
    """Hold new requests and wait for the in-flight ones (False: some still ran at the bound)."""
    budget = hold_budget(ctx)
    # Workers write too: they stop before the schema changes (the switch starts the new ones).
    paused = pause_workers(ctx.target, ctx.env)
    if paused:
        ctx.log(f"hold: stopped {len(paused)} worker(s) for the schema change")
    settled = ctx.traffic().hold(budget)
    ctx.facts.hold_started = time.monotonic()
    ctx.log(f"hold: new requests wait (at most {budget:g}s); in-flight settled: {settled}")
    return settled


def release(ctx: Context) -> str | None:
    """Let the waiting requests through (idempotent; also from recovery, where the server and
    its door may be gone with the process that held it)."""
    started = ctx.facts.hold_started
    try:
        if not ctx.target.available():
            return None
        ctx.traffic().release()
        resumed = resume_workers(ctx.target, ctx.env)
    except ShiplaneError as exc:
        ctx.log(f"releasing the hold failed: {exc.message}")
        return None
    if resumed:
        ctx.log(f"started {len(resumed)} worker(s) again")
    if started is None:
        return "hold released"
    ctx.facts.hold_started = None
    ctx.facts.hold_seconds = round(time.monotonic() - started, 3)
    ctx.log(f"hold released after {ctx.facts.hold_seconds}s")
    return f"hold released after {ctx.facts.hold_seconds}s"


def held_summary(ctx: Context) -> dict[str, Any] | None:
    """For a deploy's JSON: why it held, the budget and the estimate (None: not held)."""
    return dict(ctx.facts.hold_plan) if ctx.facts.hold_plan is not None else None
