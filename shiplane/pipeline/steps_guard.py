"""The schema guard before anything touches the database: drift, risk lint, rehearsal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.errors import MigrationError, RefusedError
from shiplane.migrate.lint import blocking, lint
from shiplane.migrate.registry import discover_for
from shiplane.migrate.rehearse import rehearse
from shiplane.migrate.schema import schema_state
from shiplane.pipeline import forward_hold
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.pipeline.steps_database import app_engine


class GuardStep(Step):
    name = "guard"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        database = ctx.database()
        if database is None:
            data["summary"] = "no database"
            return data
        release_dir = ctx.facts.need("release_dir")
        migrations = discover_for(ctx.config, Path(release_dir))
        engine = app_engine(ctx, database, release_dir)
        plan = engine.plan(migrations)
        schema = schema_state(ctx.db, ctx.env, database)
        data["schema"] = schema
        if schema["drift"] and plan.may_change and not ctx.options.get("accept_drift"):
            raise RefusedError(
                f"the {ctx.env} schema changed outside shiplane (fingerprint "
                f"{schema['fingerprint']}, recorded {schema['recorded']}); migrating it could fail",
                next_action=f"inspect the schema, then `shiplane deploy {ctx.env} --accept-drift`",
            )
        findings = []
        if engine.capabilities.lint:
            findings = [f for m in plan.pending for f in lint(m, database)]
        elif plan.pending:
            # Nothing to read the risk from: the pre-deploy backup is the fallback.
            data["lint_skipped"] = f"the {engine.name} migration engine cannot lint its sources"
        data["lint"] = [f.to_dict() for f in findings]
        gated = ctx.settings.env_config.gated
        if gated and blocking(findings):
            risky = "; ".join(f"{f.migration}: {f.message}" for f in blocking(findings))
            raise RefusedError(
                f"risky migration(s) for gated {ctx.env}: {risky}",
                next_action="split it expand/contract and annotate the destructive half "
                "(-- shiplane: expand-contract / EXPAND_CONTRACT = True)",
            )
        rehearsal = ctx.settings.env_config.rehearse
        if (gated if rehearsal is None else rehearsal) and plan.may_change:
            try:
                data["rehearsal"] = rehearse(database, migrations, engine.on)
            except MigrationError as exc:
                exc.message = f"rehearsal on a copy: {exc.message}"
                exc.step = "guard"
                raise
        # Before anything changes: whether the migration runs under a hold, and fits it.
        held = forward_hold.decide(ctx, plan.may_change, findings, data.get("rehearsal"))
        ctx.facts.hold_plan = data["hold"] = held
        parts = [
            f"schema {schema['fingerprint']}" + (" (drift accepted)" if schema["drift"] else "")
        ]
        if findings:
            parts.append(f"{len(findings)} lint finding(s)")
        if "rehearsal" in data:
            parts.append(data["rehearsal"]["summary"])
        if held is not None:
            parts.append(f"held migration (budget {held['budget_seconds']:g}s)")
        data["summary"] = "; ".join(parts)
        return data
