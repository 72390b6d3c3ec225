"""Rollback's database step: code goes back first and the schema stays where it can.

The old release's instance is already started and healthy on the current schema (the plan
runs start and health before this step). If it passes its checks there, the schema stays and
no data is touched. Otherwise the front door holds new requests, in-flight ones finish, and
the ``down`` (or, with ``--restore-db``, a checked restore) runs; the switch step releases the
hold once the old release serves, so requests are answered late, never failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.backup.checked import checked_restore
from shiplane.errors import DeployFailedError, MigrationError, RefusedError
from shiplane.migrate.registry import discover_for
from shiplane.pipeline import schema_undo
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.pipeline.steps_database import app_engine, recorded_position
from shiplane.targets.health import HealthPolicy, wait_healthy
from shiplane.targets.pausing import pause_workers, resume_workers


class SchemaRollbackStep(Step):
    name = "migrate"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {
            "database_url": ctx.facts.database_url,
            "backup_id": ctx.facts.backup_id,
            "restore_from": ctx.facts.restore_from,
            "down_target": recorded_position(ctx),
            # Recovery's undo has only this record: the release whose migrations re-apply.
            "current_release_dir": ctx.facts.need("current_release_dir"),
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
        if engine.reverts_on_undo:
            at_target = recorded is None or engine.position(current_files) == recorded[0]
            newer = not at_target
            position = recorded[0] if recorded else None
        else:
            newer = any(a["version"] not in known for a in engine.plan(current_files).applied)
            position = max(known, default=0)
        restore_db = bool(ctx.options.get("restore_db"))
        if not newer and not restore_db:
            data.update(action="none", summary="schema already matches")
            return data
        instance = ctx.facts.need("instance")
        failed = schema_undo.old_code_fits(
            ctx, instance.address.url(), ctx.facts.need("sha"), ctx.facts.release_dir
        )
        if not failed and not restore_db:
            data.update(
                action="kept",
                summary=f"kept the schema: {ctx.facts.release} passes its checks on it",
            )
            return data
        if failed:
            ctx.log(f"{ctx.facts.release} fails on the current schema: {'; '.join(failed)}")
            data["old_code_fails"] = failed
            if ctx.options.get("keep_schema"):
                # The server's watch: a `down` may drop what users wrote; a person decides.
                raise RefusedError(
                    f"{ctx.facts.release} fails on the current schema ({'; '.join(failed)}): "
                    "going back needs a `down`, which the watch never runs on its own",
                    step="keep_schema",
                    next_action=f"a person decides: shiplane rollback {ctx.env} (runs the "
                    "down under a hold), or fix forward with shiplane deploy",
                )
            # An instance that failed on this schema may keep what it had open (a SQLite
            # reader left mid-query blocks the down): it starts again after the migration.
            ctx.target.stop(instance.id)
        # From here to the switch, new requests wait at the front door (released by switch);
        # the workers stop first (the workers step starts the target release's).
        data["paused_workers"] = pause_workers(ctx.target, ctx.env)
        held = ctx.traffic().hold(schema_undo.hold_budget(ctx))
        data["held"] = True
        ctx.facts.hold_started = schema_undo.now()
        ctx.log(f"hold: in-flight requests settled: {held}")
        if restore_db:
            self._restore(ctx, database, data, engine.bookkeeping)
        else:
            self._down(ctx, database, engine, current_files, position, data)
        if failed:
            self._restart(ctx, data)
        return data

    def _restart(self, ctx: Context, data: dict[str, Any]) -> None:
        """Inside the hold, after the schema change: the old release's instance, healthy."""
        spec = ctx.facts.need("spec")
        instance = ctx.target.start(spec)
        data["restarted_instance"] = instance.id
        ctx.facts.instance = instance
        health = ctx.config.health
        policy = HealthPolicy(
            interval=health.interval,
            timeout=health.timeout,
            request_timeout=health.request_timeout,
            retries=health.retries,
        )
        outcome = wait_healthy(instance.address.url(ctx.config.app.health), policy)
        if not outcome.healthy:
            raise DeployFailedError(
                f"{ctx.facts.release} did not become healthy after the schema change: "
                f"{outcome.last}",
                next_action=f"read {spec.log_path}",
            )

    def _down(
        self,
        ctx: Context,
        database: Any,
        engine: Any,
        current_files: Any,
        position: Any,
        data: dict[str, Any],
    ) -> None:
        if position is None:
            raise MigrationError(
                "no deploy recorded where the schema was before the newer release",
                next_action=f"pick a backup (`shiplane backups {ctx.env}`), then "
                f"`shiplane rollback {ctx.env} --restore-db`",
            )
        schema_undo.guard_down(ctx, database, engine, current_files, position, data)
        try:
            reverted = engine.revert_to(current_files, position)
        except MigrationError as exc:
            if not data.get("restore_from"):
                raise
            ctx.log(f"down unavailable ({exc.message}); restoring only if nothing was written")
            data["down_error"] = exc.message
            summary = schema_undo.restore_if_unchanged(
                ctx, database, data["restore_from"], exc.message, engine.bookkeeping
            )
            data.update(action="restore", summary=summary)
            return
        data.update(action="down", reverted=reverted, summary=f"down {', '.join(reverted)}")

    def _restore(
        self, ctx: Context, database: Any, data: dict[str, Any], ignore: tuple[str, ...]
    ) -> dict[str, Any]:
        if not data.get("restore_from"):
            raise MigrationError(
                "no backup matches the target release's migrations",
                next_action=f"pick a backup with `shiplane backups {ctx.env}`",
            )
        outcome = checked_restore(
            database,
            ctx.layout.backups(ctx.env),
            data["restore_from"],
            env=ctx.env,
            discard_writes=bool(ctx.options.get("discard_writes")),
            ignore=ignore,
            encryption=schema_undo.backup_encryption(ctx),
        )
        data.update(
            action="restore",
            pre_restore_backup=outcome["pre_restore_backup"],
            discarded=outcome["written_since"],
            summary=f"restored backup {data['restore_from']}",
        )
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        if data.get("restarted_instance"):
            ctx.target.stop(data["restarted_instance"])
        if data.get("held"):
            ctx.traffic().release()
        if data.get("paused_workers"):
            resume_workers(ctx.target, ctx.env)
        database = ctx.database(data.get("database_url"))
        if database is None:
            return None
        if data.get("action") == "down":
            # Forward again with the newer release's migrations: what the old code wrote in
            # the meantime stays (a restore would discard it).
            current_dir = data["current_release_dir"]
            engine = app_engine(ctx, database, current_dir)
            applied = engine.up(discover_for(ctx.config, Path(current_dir)))
            return f"re-applied {', '.join(applied)}" if applied else None
        if data.get("action") == "restore" and data.get("pre_restore_backup"):
            outcome = checked_restore(
                database,
                ctx.layout.backups(ctx.env),
                data["pre_restore_backup"],
                env=ctx.env,
                discard_writes=False,
                encryption=schema_undo.backup_encryption(ctx),
            )
            return f"database back to {data['pre_restore_backup']} ({outcome['restored']})"
        return None
