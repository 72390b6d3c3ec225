"""Verification inside the pipeline: every check against the new instance before any traffic
reaches it, and the smoke group through the front door after the switch."""

from __future__ import annotations

from typing import Any

import httpx

from shiplane.config.checks import Check, HttpCheck
from shiplane.errors import ChecksFailedError, SmokeFailedError
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.state.maintenance import bypass_headers
from shiplane.verify import report
from shiplane.verify.commit import commit_checks
from shiplane.verify.runner import checks_hash, run_checks
from shiplane.verify.target import Target, make_target

HEALTH_ASK_TIMEOUT = 3.0


def _target(
    ctx: Context,
    phase: str,
    base_url: str,
    current_url: str | None,
    headers: dict[str, str] | None = None,
) -> Target:
    return make_target(
        ctx.loaded,
        ctx.layout,
        ctx.settings,
        sha=ctx.facts.need("sha"),
        release_dir=ctx.facts.need("release_dir"),
        phase=phase,
        base_url=base_url,
        current_url=current_url,
        headers=headers,
    )


def _checks(ctx: Context, data: dict[str, Any]) -> list[Check]:
    """The checks of the commit being deployed (shiplane.verify.commit); where they came from
    goes in the step's data and the log."""
    found = commit_checks(ctx.loaded, ctx.facts.need("release_dir"))
    data["checks_from"] = found.source
    ctx.log(f"checks from the {found.source}" + (f" ({found.note})" if found.note else ""))
    return found.checks


def _verify(
    ctx: Context, checks: list[Check], phase: str, target: Target, every: list[Check]
) -> dict[str, Any]:
    results = run_checks(checks, target)
    return report.record(
        ctx.db,
        env=ctx.env,
        sha=ctx.facts.need("sha"),
        config_hash=checks_hash(every),
        phase=phase,
        results=results,
        deployment_id=ctx.deployment_id,
    )


def _failed(stored: dict[str, Any]) -> str:
    names = [f"{r['name']} ({r['message']})" for r in stored["results"] if r["status"] == "failed"]
    return f"{len(names)} check(s) failed: {'; '.join(names)}"


def _serving_healthy(ctx: Context) -> bool:
    """Whether the env's front door says what serves is healthy (the server's monitor)."""
    try:
        answer = httpx.get(ctx.traffic().url() + "/_deploy/health", timeout=HEALTH_ASK_TIMEOUT)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


class VerifyStep(Step):
    """All checks against green; what serves now is the `current` side of diff checks."""

    name = "verify"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        checks = _checks(ctx, data)
        # Under maintenance the front door serves the page, and held, what serves waits at
        # the front door (on an older schema): neither is a version to compare with.
        serving = (
            ctx.facts.previous_sha is not None
            and not bypass_headers(ctx.db, ctx.env)
            and ctx.facts.hold_started is None
        )
        unhealthy = serving and not _serving_healthy(ctx)
        if unhealthy:
            # Fixing forward: a crashed or failing version is no standard to meet.
            ctx.log("what serves is not healthy: diff checks are skipped, not failed")
        target = _target(
            ctx,
            "candidate",
            ctx.facts.need("instance").address.url(),
            ctx.traffic().url() if serving and not unhealthy else None,
        )
        if unhealthy:
            target.current_missing = "what serves now is not healthy: nothing to compare with"
        stored = _verify(ctx, checks, "candidate", target, checks)
        ctx.facts.verification_id = stored["id"]
        data.update(verification_id=stored["id"], summary=_summary(stored))
        if not stored["passed"]:
            raise ChecksFailedError(
                _failed(stored),
                next_action=f"nothing was switched; read `shiplane report {stored['id']}`",
                failed_checks=report.failed_checks(stored),
            )
        return data


class SmokeStep(Step):
    """Through the front door: /_deploy/version reports the new sha, the health route is 2xx,
    and the `smoke` group passes. A failure switches back (exit 4)."""

    name = "smoke"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        every = _checks(ctx, data)
        checks = [c for c in every if c.group == "smoke"]
        # Through a door in maintenance too: the checks carry its bypass.
        bypass = bypass_headers(ctx.db, ctx.env)
        target = _target(ctx, "serving", ctx.traffic().url(), None, bypass)
        health = make_health_check(ctx.config.app.health)
        stored = _verify(ctx, [health, *checks], "smoke", target, every)
        data.update(verification_id=stored["id"], summary=_summary(stored))
        if not stored["passed"]:
            raise SmokeFailedError(
                _failed(stored),
                next_action=f"the previous version serves again; `shiplane report {stored['id']}`",
                failed_checks=report.failed_checks(stored),
            )
        return data


def make_health_check(path: str) -> Check:
    return HttpCheck(kind="http", name="health (front door)", group="smoke", path=path)


def _summary(stored: dict[str, Any]) -> str:
    counts = stored["summary"]
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
