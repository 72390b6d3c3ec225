"""Rollback's first step: which kept release to go back to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.backup.archive import list_backups
from shiplane.errors import ConfigError
from shiplane.migrate.registry import discover_for
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.state.db import StateDB
from shiplane.state.releases import previous_release


def choose_target(db: StateDB, env: str, to: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(current release, target release); the target is the one before current unless named."""
    state = db.env_state(env)
    releases = [r for r in db.releases(env) if Path(r["path"]).is_dir()]
    if state is None or not state.get("release"):
        raise ConfigError(
            f"nothing has been deployed to {env!r} yet",
            step="target",
            next_action=f"shiplane deploy {env}",
        )
    current = next((r for r in releases if r["name"] == state["release"]), None)
    if current is None:
        raise ConfigError(f"the serving release {state['release']} is not on disk", step="target")
    if to is not None:
        matches = [r for r in releases if r["name"] == to or r["sha"].startswith(to)]
        if not matches:
            names = ", ".join(r["name"] for r in releases)
            raise ConfigError(
                f"--to {to!r} matches no kept release of {env} (kept: {names})",
                step="target",
                next_action=f"use one of: {names}",
            )
        return current, matches[0]
    older = previous_release(releases, current)
    if older is None:
        raise ConfigError(
            f"{env} has no release older than {current['name']} to roll back to",
            step="target",
            next_action="deploy a fixed commit instead: shiplane deploy " + env,
        )
    return current, older


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
        facts = ctx.facts
        facts.release, facts.release_dir, facts.sha = target["name"], target["path"], target["sha"]
        facts.current_release_dir = current["path"]
        facts.new_release = False
        facts.restore_from = match["id"] if match else None
        ctx.db.update_deployment(
            ctx.deployment_id,
            release=target["name"],
            sha=target["sha"],
            previous_release=current["name"],
        )
        data.update(
            target=target["name"],
            current=current["name"],
            summary=f"{current['name']} -> {target['name']}",
        )
        return data
