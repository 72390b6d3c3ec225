"""Steps that protect and change the database: backup, migrate up, migrate down (rollback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.backup import create_backup, prune_backups, restore_backup
from shiplane.backup.encrypt import for_env, identity_of
from shiplane.databases import Database
from shiplane.errors import MigrationError
from shiplane.migrate.base import MigrationEngine
from shiplane.migrate.registry import discover_for, engine_for
from shiplane.migrate.tools import AppTools
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step


def app_engine(ctx: Context, database: Database, release_dir: str | Path) -> MigrationEngine:
    """The configured engine, running the app's tools in ``release_dir`` with what the
    environment gives its processes: variables, env-file secrets (masked in the log), the
    app's interpreter."""
    tools = AppTools(
        release_dir=Path(release_dir),
        variables=ctx.settings.variables,
        secrets=ctx.settings.secrets,
        python=ctx.config.app.python,
        redact=ctx.redact,
    )
    return engine_for(ctx.config, database, log=ctx.log, env=ctx.env, tools=tools)


def _restore(ctx: Context, backup_id: str, url: str) -> str:
    database = ctx.database(url)
    assert database is not None
    encryption = ctx.settings.env_config.backup_encryption
    restore_backup(ctx.layout.backups(ctx.env) / backup_id, database, identity_of(encryption))
    return f"database restored from backup {backup_id}"


class BackupStep(Step):
    """Back up when the env asks for it or when migrations are pending."""

    name = "backup"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        database = ctx.database()
        if database is None:
            data["summary"] = "no database"
            return data
        release_dir = ctx.facts.need("release_dir")
        engine = app_engine(ctx, database, release_dir)
        if engine.reverts_on_undo and ctx.facts.current_release_dir:
            # Rollback: only the newer release's tool knows the revisions applied now.
            release_dir = ctx.facts.current_release_dir
            engine = app_engine(ctx, database, release_dir)
        plan = engine.status(Path(release_dir))
        engine.check_not_edited(plan)
        ctx.facts.pending = [m.label for m in plan.pending]
        # An engine whose status cannot tell what is pending may change the schema: back up.
        if (
            not ctx.settings.env_config.backup
            and not plan.may_change
            and not ctx.options.get("backup")
        ):
            data["summary"] = "skipped (no pending migrations, backup = false)"
            return data
        manifest = create_backup(
            database,
            ctx.layout.backups(ctx.env),
            {
                "env": ctx.env,
                "sha": ctx.facts.previous_sha,
                "release": ctx.facts.previous_release,
                "deployment_id": ctx.deployment_id,
                "migrations": plan.to_dict()["applied"],
            },
            for_env(ctx.settings.env_config.backup_encryption, ctx.layout.server.root),
        )
        ctx.facts.backup_id = manifest["id"]
        pruned = prune_backups(
            ctx.layout.backups(ctx.env),
            ctx.settings.env_config.backups_keep,
            ctx.settings.env_config.backups_keep_days,
        )
        data.update(backup_id=manifest["id"], pruned=pruned, summary=f"backup {manifest['id']}")
        return data


class MigrateStep(Step):
    name = "migrate"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {
            "database_url": ctx.facts.database_url,
            "backup_id": ctx.facts.backup_id,
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        database = ctx.database(data["database_url"])
        if database is None:
            data["summary"] = "no database"
            return data
        release_dir = ctx.facts.need("release_dir")
        engine = app_engine(ctx, database, release_dir)
        migrations = discover_for(ctx.config, Path(release_dir))
        if engine.reverts_on_undo and engine.capabilities.revert:
            # Where the database is before this step: undo, and a later rollback of this
            # release, revert to it. In data before up runs, so a failed run keeps it too.
            data["down_target"] = engine.position(migrations)
        applied = engine.up(migrations)
        data["applied"] = applied
        data["summary"] = f"applied {', '.join(applied)}" if applied else "up to date"
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        # One transaction per run: a failed run left nothing applied; the backup covers a crash.
        if data.get("database_url") is None:
            return None
        if "down_target" in data:
            # A tool that applies migration by migration: revert to the recorded position.
            database = ctx.database(data["database_url"])
            assert database is not None
            engine = app_engine(ctx, database, ctx.facts.need("release_dir"))
            try:
                reverted = engine.revert_to([], data["down_target"])
                return f"reverted {', '.join(reverted)}" if reverted else None
            except MigrationError as exc:
                if not data.get("backup_id"):
                    raise
                ctx.log(f"down to the recorded position failed ({exc.message}); restoring")
        if data.get("backup_id"):
            return _restore(ctx, data["backup_id"], data["database_url"])
        if data.get("applied"):
            raise MigrationError("migrations ran but no backup was taken", step="migrate")
        return None


class MigrateDownStep(Step):
    """Rollback: bring the schema back to the target release's migrations."""

    name = "migrate"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {
            "database_url": ctx.facts.database_url,
            "backup_id": ctx.facts.backup_id,
            "restore_from": ctx.facts.restore_from,
            "down_target": recorded_position(ctx),
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        database = ctx.database(data["database_url"])
        if database is None:
            data.update(action="none", summary="no database")
            return data
        target = discover_for(ctx.config, Path(ctx.facts.need("release_dir")))
        # Down runs the newer release's code: it has the migrations to revert.
        current_dir = ctx.facts.need("current_release_dir")
        engine = app_engine(ctx, database, current_dir)
        current_files = discover_for(ctx.config, Path(current_dir))
        known = {m.version for m in target}
        recorded = data.get("down_target")
        newer: list[Any]
        if engine.reverts_on_undo:
            at_target = recorded is None or engine.position(current_files) == recorded[0]
            newer = [] if at_target else ["(newer than the recorded position)"]
        else:
            newer = [a for a in engine.plan(current_files).applied if a["version"] not in known]
        restore_db = bool(ctx.options.get("restore_db"))
        if not newer and not restore_db:
            data.update(action="none", summary="schema already matches")
            return data
        if not restore_db and not engine.capabilities.revert:
            data["down_error"] = f"the {engine.name} migration engine cannot revert to a version"
            ctx.log(f"{data['down_error']}; restoring the backup")
        elif not restore_db:
            try:
                if engine.reverts_on_undo:
                    assert recorded is not None
                    reverted = engine.revert_to(current_files, recorded[0])
                else:
                    reverted = engine.down(current_files, to=max(known, default=0))
                data.update(action="down", reverted=reverted, summary=f"down {', '.join(reverted)}")
                return data
            except MigrationError as exc:
                ctx.log(f"down migrations unavailable ({exc.message}); restoring the backup")
                data["down_error"] = exc.message
        if not data.get("restore_from"):
            raise MigrationError(
                "no backup matches the target release's migrations, and down migrations "
                "could not revert the schema",
                next_action="pick a backup with `shiplane backups ENV` and `shiplane restore`",
            )
        what = _restore(ctx, data["restore_from"], data["database_url"])
        data.update(action="restore", summary=what)
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        if data.get("action") in ("down", "restore") and data.get("backup_id"):
            return _restore(ctx, data["backup_id"], data["database_url"])
        return None


def recorded_position(ctx: Context) -> list[Any] | None:
    """The position the migrate step recorded before it first migrated past the target
    release: where a rollback to the target takes the database. ``[position]`` (a position
    may be None: nothing applied), or None when no deploy recorded one."""
    releases = ctx.db.releases(ctx.env)  # newest first
    target = next((r for r in releases if r["path"] == ctx.facts.release_dir), None)
    current = next((r for r in releases if r["path"] == ctx.facts.current_release_dir), None)
    if target is None or current is None:
        return None
    newer = [
        r
        for r in releases
        if target["created_at"] < r["created_at"] <= current["created_at"] and r["deployment_id"]
    ]
    for release in reversed(newer):  # the oldest first: its deploy saw the target's schema
        for step in ctx.db.steps(release["deployment_id"]):
            if step["name"] == "migrate" and "down_target" in step["data"]:
                return [step["data"]["down_target"]]
    return None
