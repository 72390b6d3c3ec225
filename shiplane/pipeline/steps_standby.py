"""Rollback's fast path: the warm standby (issue 16 item 3).

After a deploy the previous instance stays running, unrouted and health-probed, for
``deploy.standby_ttl``. A rollback to its release takes that instance instead of starting
one: the start step claims it and the health step has nothing to wait for (the server probed
it at the claim), so the rollback is a front-door switch plus the drain of what served. The
rest of the plan is unchanged, so schema changes keep their rules: newer migrations are
checked against the standby like against a fresh instance, and reverted under the hold.
Anything else (no standby, another release, changed settings, a crash or a failed probe on
standby) takes the usual path: start, wait for health.

These steps live in the rollback plan itself, so every caller of the rollback operation (the
CLI, the post-switch watch) gets the fast path.
"""

from __future__ import annotations

from typing import Any

from shiplane.pipeline.context import Context
from shiplane.pipeline.steps_traffic import DrainStep, HealthStep, StartStep
from shiplane.targets.base import InstanceSpec


class StandbyStartStep(StartStep):
    """The standby instance of the target release when it is usable, else a fresh start."""

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        spec = InstanceSpec.from_stored(data["spec"])
        claim = ctx.traffic().claim_standby(spec)
        if claim.instance is None:
            data.update(standby=False, standby_reason=claim.reason)
            ctx.log(f"warm standby not used: {claim.reason}; starting {spec.release}")
            return super().run(ctx, data)
        instance = claim.instance
        ctx.facts.instance = instance
        ctx.facts.standby = True
        data.update(
            instance_id=instance.id,
            port=instance.address.port,
            standby=True,
            pid=claim.pid,
            summary=f"warm standby {instance.id} (pid {claim.pid}): nothing started",
        )
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        if not data.get("standby"):
            return super().undo(ctx, data)
        # The switch step's undo ran first: the instance is unrouted again, and as warm as
        # it was for the next try.
        ttl = ctx.config.deploy.standby_ttl
        if ctx.traffic().keep_standby(data["instance_id"], ttl):
            return f"instance {data['instance_id']} back on standby"
        return f"instance {data['instance_id']} could not go back on standby"


class StandbyHealthStep(HealthStep):
    """No wait for the standby: the server's probe at the claim found it healthy."""

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        if not ctx.facts.standby:
            return super().run(ctx, data)
        data.update(
            standby=True,
            attempts=0,
            seconds=0,
            summary="warm standby: healthy by the server's probe at the claim, no wait",
        )
        return data


class StoppingDrainStep(DrainStep):
    """Drain and stop: what a rollback or a restart leaves is not worth keeping warm."""

    keeps_standby = False
