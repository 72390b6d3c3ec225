"""Steps that protect and change the database: backup, migrate up, migrate down (rollback)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.backup import create_backup, prune_backups, restore_backup
from shiplane.backup.encrypt import for_env, identity_of
from shiplane.databases import Database
from shiplane.errors import MigrationError
from shiplane.migrate.base import MigrationEngine, MigrationSource
from shiplane.migrate.registry import discover_for, engine_for
from shiplane.migrate.tools import AppTools
from shiplane.pipeline import forward_hold, schema_undo
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
        data: dict[str, Any] = {
            "database_url": ctx.facts.database_url,
            "backup_id": ctx.facts.backup_id,
            # Recovery's undo has only this record: the release whose migrations ran.
            "release_dir": ctx.facts.need("release_dir"),
            # Recorded before the hold is taken: an undo (or recovery) releases it.
            "hold": ctx.facts.hold_plan is not None,
        }
        database = ctx.database()
        if database is not None:
            # Where the database is before this step, written before `up` acts: the undo
            # compares with it (unmoved: nothing ran, nothing is restored) and reverts to it.
            engine = app_engine(ctx, database, ctx.facts.need("release_dir"))
            migrations = discover_for(ctx.config, Path(ctx.facts.need("release_dir")))
            data["down_target"] = engine.position(migrations)
        return data

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        database = ctx.database(data["database_url"])
        if database is None:
            data["summary"] = "no database"
            return data
        release_dir = ctx.facts.need("release_dir")
        engine = app_engine(ctx, database, release_dir)
        if data["hold"]:
            # The serving code cannot run on the new schema: from here to the switch (which
            # releases it) new requests wait, and the in-flight ones finish first.
            data["settled"] = forward_hold.take(ctx)
        # A run is one transaction where the database allows it (SQLite, PostgreSQL DDL): a
        # migration failing halfway leaves nothing applied, and the undo finds nothing moved.
        applied = engine.up(discover_for(ctx.config, Path(release_dir)))
        data["applied"] = applied
        data["summary"] = f"applied {', '.join(applied)}" if applied else "up to date"
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        try:
            what = self._undo(ctx, data)
        finally:
            # A held deploy that failed before its switch: the down ran inside the same hold
            # and the old release serves on the old schema again; let the waiting through.
            released = forward_hold.release(ctx) if data.get("hold") else None
        return "; ".join(w for w in (what, released) if w) or None

    def _undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        database = ctx.database(data.get("database_url"))
        if database is None or "down_target" not in data:
            return None
        release_dir = data["release_dir"]
        engine = app_engine(ctx, database, release_dir)
        migrations = discover_for(ctx.config, Path(release_dir))
        position = data["down_target"]
        if engine.position(migrations) == position:
            return None  # no migration ran: nothing is reverted or restored, ever
        if not schema_undo.switch_attempted(ctx):
            # Nothing but the old code wrote since the migration, through a schema it ran on.
            return _revert(ctx, database, engine, migrations, position, data.get("backup_id"))
        state = ctx.db.env_state(ctx.env)
        if not state or not state.get("spec"):
            return "kept the new schema: nothing served before this deploy"
        if ctx.facts.hold_started is not None:
            # The switch back took the hold (the old code fails on this schema, the lint
            # said): down inside it, the waiting requests meet the old schema.
            held: dict[str, Any] = {}
            schema_undo.guard_down(ctx, database, engine, migrations, position, held)
            what = _revert(ctx, database, engine, migrations, position, data.get("backup_id"))
            return f"{what} (inside the hold)"
        # The old release serves again (the switch was undone first): if it passes its checks
        # on the new schema, the schema and every write to it stay.
        failed = schema_undo.old_code_fits(
            ctx, ctx.traffic().url(), state["sha"], state["spec"]["release_dir"]
        )
        if not failed:
            return "kept the new schema: the serving release passes its checks on it"
        ctx.log(f"the old release fails on the new schema ({'; '.join(failed)}); reverting")
        record: dict[str, Any] = {}
        with schema_undo.hold(ctx, record):
            schema_undo.guard_down(ctx, database, engine, migrations, position, record)
            what = _revert(ctx, database, engine, migrations, position, data.get("backup_id"))
        return f"{what} (inside a {record['hold_seconds']}s hold)"


def _revert(
    ctx: Context,
    database: Database,
    engine: MigrationEngine,
    migrations: list[MigrationSource],
    position: Any,
    backup_id: str | None,
) -> str:
    """`down` to ``position``; a migration that cannot be reverted falls back to the backup,
    restored only when nothing was written since it was taken (otherwise exit 5)."""
    try:
        reverted = engine.revert_to(migrations, position)
        return f"reverted {', '.join(reverted)}" if reverted else "nothing to revert"
    except MigrationError as exc:
        if not backup_id:
            raise
        ctx.log(f"down to the recorded position failed ({exc.message}); checking the backup")
        return schema_undo.restore_if_unchanged(
            ctx, database, backup_id, f"cannot revert: {exc.message}", engine.bookkeeping
        )


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
