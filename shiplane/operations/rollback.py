"""`shiplane rollback ENV [--to RELEASE|SHA] [--restore-db]`: back to an earlier release."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.backup.archive import list_backups
from shiplane.errors import ConfigError
from shiplane.migrate.registry import discover_for
from shiplane.operations.recover import recover_stale
from shiplane.operations.session import execute, make_context, open_app
from shiplane.pipeline.context import Context, Progress
from shiplane.pipeline.saga import Step
from shiplane.pipeline.steps_database import BackupStep, MigrateDownStep
from shiplane.pipeline.steps_record import RecordStep
from shiplane.pipeline.steps_source import LockStep
from shiplane.pipeline.steps_traffic import DrainStep, HealthStep, StartStep, SwitchStep
from shiplane.pipeline.steps_verify import SmokeStep
from shiplane.results import Result
from shiplane.state.db import StateDB


def choose_target(db: StateDB, env: str, to: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(current release, target release); the target is the one before current unless named."""
    state = db.env_state(env)
    releases = [r for r in db.releases(env) if Path(r["path"]).is_dir()]
    if state is None or not state.get("release"):
        raise ConfigError(
            f"nothing has been deployed to {env!r} yet", step="target",
            next_action=f"shiplane deploy {env}",
        )  # fmt: skip
    current = next((r for r in releases if r["name"] == state["release"]), None)
    if current is None:
        raise ConfigError(f"the serving release {state['release']} is not on disk", step="target")
    if to is not None:
        matches = [r for r in releases if r["name"] == to or r["sha"].startswith(to)]
        if not matches:
            names = ", ".join(r["name"] for r in releases)
            raise ConfigError(
                f"--to {to!r} matches no kept release of {env} (kept: {names})", step="target",
                next_action=f"use one of: {names}",
            )  # fmt: skip
        return current, matches[0]
    # A redeploy of the same commit makes a new release; going back means another commit.
    older = [
        r
        for r in releases
        if r["created_at"] < current["created_at"] and r["sha"] != current["sha"]
    ]
    if not older:
        raise ConfigError(
            f"{env} has no release older than {current['name']} to roll back to", step="target",
            next_action="deploy a fixed commit instead: shiplane deploy " + env,
        )  # fmt: skip
    return current, older[0]


class TargetStep(Step):
    name = "target"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        current, target = choose_target(ctx.db, ctx.env, ctx.options.get("to"))
        if target["name"] == current["name"]:
            raise ConfigError(f"{target['name']} already serves {ctx.env}", step="target")
        labels = [m.label for m in discover_for(ctx.config, Path(target["path"]))]
        match = next(
            (b for b in list_backups(ctx.layout.backups(ctx.env)) if b.get("migrations") == labels),
            None,
        )
        ctx.facts.update(
            release=target["name"], release_dir=target["path"], sha=target["sha"],
            current_release_dir=current["path"], new_release=False,
            restore_from=match["id"] if match else None,
        )  # fmt: skip
        ctx.db.update_deployment(
            ctx.deployment_id, release=target["name"], sha=target["sha"],
            previous_release=current["name"],
        )  # fmt: skip
        data.update(
            target=target["name"], current=current["name"],
            summary=f"{current['name']} -> {target['name']}",
        )  # fmt: skip
        return data


def rollback_steps() -> list[Step]:
    return [
        LockStep(), TargetStep(), BackupStep(), MigrateDownStep(), StartStep(), HealthStep(),
        SwitchStep(), SmokeStep(), DrainStep(), RecordStep(),
    ]  # fmt: skip


def rollback(
    env: str,
    to: str | None = None,
    restore_db: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    with open_app(config_path, env) as (loaded, layout, db):
        recovered = recover_stale(loaded, layout, db)
        choose_target(db, env, to)  # bad input is refused before anything is recorded
        options = {"to": to, "restore_db": restore_db, "backup": True}
        ctx = make_context(loaded, layout, db, env, "rollback", progress, options)
        result = execute(ctx, "rollback", rollback_steps())
        migrate = next((s for s in db.steps(ctx.deployment_id) if s["name"] == "migrate"), None)
        result.data.update(
            sha=ctx.facts.get("sha"),
            release=ctx.facts.get("release"),
            database=_database_summary(migrate["data"] if migrate else {}),
            recovered=recovered,
        )
        return result


def _database_summary(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": data.get("action", "none"),
        "reverted": data.get("reverted", []),
        "restored_backup": data.get("restore_from") if data.get("action") == "restore" else None,
        "why_restore": data.get("down_error"),
    }
