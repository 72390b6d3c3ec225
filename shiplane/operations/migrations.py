"""`shiplane migrate ENV status|up|down|lint|rehearse`: migrations outside a deploy."""

from __future__ import annotations

from shiplane.backup import create_backup
from shiplane.errors import ConfigError, MigrationError
from shiplane.migrate.lint import lint
from shiplane.migrate.registry import discover_for, engine_for
from shiplane.migrate.rehearse import rehearse
from shiplane.migrate.schema import schema_state
from shiplane.operations.database import database_for, env_lock, serving_release_dir
from shiplane.operations.session import Session
from shiplane.results import Result
from shiplane.state.db import record_fingerprint

ACTIONS = ("status", "up", "down", "lint", "rehearse")


def check_migrate(action: str, to: int | None) -> None:
    if action not in ACTIONS:
        raise ConfigError(
            f"unknown migrate action {action!r}", next_action=f"use one of: {', '.join(ACTIONS)}"
        )
    if action == "down" and to is None:
        raise ConfigError(
            "migrate down needs --to N", next_action="e.g. shiplane migrate dev down --to 1"
        )


def migrate(session: Session, env: str, action: str, to: int | None, dry_run: bool) -> Result:
    loaded, layout, db = session.loaded, session.layout, session.db
    database = database_for(loaded, layout, env)
    layout.ensure(env)
    config = loaded.config
    files = discover_for(config, serving_release_dir(loaded, db, env))
    engine = engine_for(config, database)
    plan = engine.plan(files)
    result = Result(command=f"migrate {action}", env=env)
    result.data.update(database=database.describe(), **plan.to_dict())
    if action == "status":
        result.data["schema"] = schema_state(db, env, database)
        return result
    if action in ("lint", "rehearse"):
        # What is about to ship: the repository's migrations, pending in this database.
        work_files = discover_for(config, loaded.repo_dir)
        pending = engine.plan(work_files).pending
        if action == "lint":
            findings = []
            if engine.capabilities.lint:
                findings = [f.to_dict() for m in pending for f in lint(m, database)]
            else:
                result.data["lint_skipped"] = (
                    f"the {engine.name} migration engine cannot lint its sources"
                )
            result.data["lint"] = findings
            result.data["blocking_for_gated_envs"] = [f for f in findings if not f["annotated"]]
        else:
            result.data["rehearsal"] = rehearse(database, work_files, engine.on)
        return result
    if action == "down" and not engine.capabilities.revert:
        raise MigrationError(
            f"the {engine.name} migration engine cannot revert to a version",
            step="migrate",
            next_action=f"restore a backup instead: `shiplane backups {env}`, then "
            f"`shiplane restore {env} ID --yes`",
        )
    if dry_run:
        if action == "up":
            todo = [m for m in plan.pending if to is None or m.version <= to]
            result.data["would_apply"] = [
                {"migration": m.label, "statements": m.statements("up")} for m in todo
            ]
        else:
            result.data["would_revert"] = [
                a["label"] for a in reversed(plan.applied) if a["version"] > (to or 0)
            ]
        result.data["dry_run"] = True
        return result
    with env_lock(db, env, "migrate"):
        engine.check_not_edited(plan)
        backup = create_backup(
            database,
            layout.backups(env),
            {"env": env, "reason": f"migrate {action}", "migrations": plan.to_dict()["applied"]},
        )
        if action == "up":
            result.data["applied_now"] = engine.up(files, to=to)
        else:
            assert to is not None
            result.data["reverted_now"] = engine.down(files, to=to)
        result.data["backup_id"] = backup["id"]
        result.data.update(engine.plan(files).to_dict())
        record_fingerprint(db, env, database.fingerprint(), f"migrate {action}")
    return result
