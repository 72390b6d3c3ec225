"""The first step of rollback and restart: which kept release to start (again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.backup.archive import list_backups
from shiplane.config.models import Config
from shiplane.errors import ConfigError
from shiplane.gitops import server_repo
from shiplane.migrate.registry import discover_for
from shiplane.pipeline import kept_releases, rolled_back
from shiplane.pipeline.context import Context
from shiplane.pipeline.kept_releases import KeptReleases
from shiplane.pipeline.saga import Step
from shiplane.state.db import StateDB


def serving_release(
    db: StateDB, env: str, on_disk: bool = True, fix: str | None = None
) -> dict[str, Any]:
    """The kept release that serves ``env`` (ConfigError when nothing does, or, with
    ``on_disk``, when its directory is gone); ``fix`` is the command that deploys there."""
    state = db.env_state(env)
    if state is None or not state.get("release"):
        raise ConfigError(
            f"nothing has been deployed to {env!r} yet",
            step="target",
            next_action=fix or f"shiplane deploy {env}",
        )
    release = next((r for r in db.releases(env) if r["name"] == state["release"]), None)
    if release is None or (on_disk and not Path(release["path"]).is_dir()):
        raise ConfigError(f"the serving release {state['release']} is not on disk", step="target")
    return release


def choose_target(
    db: StateDB,
    env: str,
    to: str | None,
    kept: KeptReleases | None = None,
    config: Config | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(current release, target release); the target is the one before current unless named.
    Releases whose directory is gone are built again by ``kept`` (``shiplane.pipeline.
    kept_releases``); without it, as before anything is recorded, they count as buildable."""
    fix = kept_releases.fix_forward(config, env)
    current = serving_release(db, env, on_disk=False, fix=fix)
    if kept is not None and (reason := kept.ensure(current)) is not None:
        raise ConfigError(
            f"the serving release {current['name']} is not on disk and cannot be built "
            f"again (its down migrations live there): {reason}",
            step="target",
            next_action=fix,
        )
    releases = db.releases(env)
    if to is not None:
        matches = [r for r in releases if r["name"] == to or r["sha"].startswith(to)]
        if not matches:
            names = ", ".join(r["name"] for r in releases)
            raise ConfigError(
                f"--to {to!r} matches no kept release of {env} (kept: {names})",
                step="target",
                next_action=f"use one of: {names}",
            )
        return current, kept_releases.named(matches[0], kept)
    target = kept_releases.older(releases, current, kept)
    if target is None:
        skipped = kept.skipped if kept is not None else []
        raise ConfigError(
            f"{env} has no release older than {current['name']} to roll back to"
            + "".join(
                f"; {s['release']} is not on disk and cannot be built again: {s['why']}"
                for s in skipped
            ),
            step="target",
            next_action=fix,
        )
    return current, target


class TargetStep(Step):
    name = "target"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        kept = KeptReleases(ctx.layout, ctx.config.app.name, ctx.env)
        current, target = choose_target(ctx.db, ctx.env, ctx.options.get("to"), kept, ctx.config)
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
            target_sha=target["sha"],
            current=current["name"],
            current_sha=current["sha"],
            summary=f"{current['name']} -> {target['name']}"
            + "".join(f", skipped {s['release']} (cannot be built again)" for s in kept.skipped)
            + (f", built again: {', '.join(kept.rebuilt)}" if kept.rebuilt else ""),
            rebuilt=kept.rebuilt,
            skipped=kept.skipped,
        )
        return data


class RewindStep(Step):
    """Rollback's last step, after the pivot: the commits it took out stay out of ENV's
    history (``shiplane.pipeline.rolled_back``). Recovery rolls it forward from the target
    step's record."""

    name = "rewind"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {
            "repo": str(server_repo.ensure(ctx.layout.repo)),
            "branch": ctx.settings.env_config.branch,
            "left": ctx.facts.previous_sha,
            "target": ctx.facts.need("sha"),
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        rolled_back.rewind(ctx, data)
        data["summary"] = f"{len(data['rolled_back'])} commit(s) rolled back" + (
            f", {data['branch']} moved back" if data["branch_moved"] else ""
        )
        return data

    def roll_forward(self, ctx: Context, records: dict[str, dict[str, Any]]) -> None:
        data = records.get("rewind") or {}
        if not data.get("target"):
            target = records.get("target") or {}
            if not target.get("target_sha"):
                return
            data = {
                "repo": str(ctx.layout.repo),
                "branch": ctx.settings.env_config.branch,
                "left": target.get("current_sha"),
                "target": target["target_sha"],
            }
        rolled_back.rewind(ctx, data)


class RestartTargetStep(Step):
    """Restart's first step: the serving release itself. Like rollback's target, the release
    exists already (no export, no build, no migration); only a fresh instance of it is started,
    checked and switched to, so new settings (`shiplane env set`) take effect without a dropped
    request. Named "target" like rollback's, which is how recovery's record step knows that no
    new release is to be recorded."""

    name = "target"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        kept = KeptReleases(ctx.layout, ctx.config.app.name, ctx.env)
        current = kept_releases.serving_on_disk(ctx.db, ctx.env, kept, serving_release, ctx.config)
        facts = ctx.facts
        facts.release, facts.release_dir, facts.sha = (
            current["name"],
            current["path"],
            current["sha"],
        )
        facts.current_release_dir = current["path"]
        facts.new_release = False
        ctx.db.update_deployment(
            ctx.deployment_id,
            release=current["name"],
            sha=current["sha"],
            previous_release=current["name"],
        )
        data.update(
            target=current["name"],
            summary=f"restart {current['name']}"
            + (" (built again: its directory was gone)" if kept.rebuilt else ""),
            rebuilt=kept.rebuilt,
        )
        return data
