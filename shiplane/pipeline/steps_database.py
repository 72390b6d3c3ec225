"""Steps that protect and change the database: backup, migrate up, migrate down (rollback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.backup import create_backup, prune_backups, restore_backup
from shiplane.errors import MigrationError
from shiplane.migrate.registry import discover_for, engine_for
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step


def _restore(ctx: Context, backup_id: str, url: str) -> str:
    database = ctx.database(url)
    assert database is not None
    restore_backup(ctx.layout.backups(ctx.env) / backup_id, database)
    return f"database restored from backup {backup_id}"


class BackupStep(Step):
    """Back up when the env asks for it or when migrations are pending."""

    name = "backup"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        database = ctx.database()
        if database is None:
            data["summary"] = "no database"
            return data
        engine = engine_for(ctx.config, database, log=ctx.log, env=ctx.env)
        plan = engine.status(Path(ctx.facts.need("release_dir")))
        engine.check_not_edited(plan)
        ctx.facts.pending = [m.label for m in plan.pending]
        if (
            not ctx.settings.env_config.backup
            and not plan.pending
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
        engine = engine_for(ctx.config, database, log=ctx.log, env=ctx.env)
        applied = engine.up(discover_for(ctx.config, Path(ctx.facts.need("release_dir"))))
        data["applied"] = applied
        data["summary"] = f"applied {', '.join(applied)}" if applied else "up to date"
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        # One transaction per run: a failed run left nothing applied; the backup covers a crash.
        if data.get("database_url") is None:
            return None
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
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        database = ctx.database(data["database_url"])
        if database is None:
            data.update(action="none", summary="no database")
            return data
        target = discover_for(ctx.config, Path(ctx.facts.need("release_dir")))
        engine = engine_for(ctx.config, database, log=ctx.log, env=ctx.env)
        current_files = discover_for(ctx.config, Path(ctx.facts.need("current_release_dir")))
        known = {m.version for m in target}
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
