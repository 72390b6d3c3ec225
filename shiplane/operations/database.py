"""Database operations outside a deploy: migrate status/up/down, backup, backups, restore."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shiplane.backup import create_backup, list_backups, restore_backup
from shiplane.config.loader import LoadedConfig, env_settings
from shiplane.errors import ConfigError
from shiplane.layout import Layout
from shiplane.migrate import SqliteMigrator, discover
from shiplane.operations.recover import recover_stale
from shiplane.operations.session import database_path, open_app
from shiplane.results import Result
from shiplane.state import lock
from shiplane.state.db import StateDB


def _db_path(loaded: LoadedConfig, layout: Layout, env: str) -> Path:
    settings = env_settings(loaded, env)
    path = database_path(layout, settings)
    if path is None:
        raise ConfigError(
            f"environment {env!r} has no database (database.url is not set)",
            next_action='set [database] url = "sqlite:///app.db" in shiplane.toml',
        )
    return Path(path)


def _migrations_dir(loaded: LoadedConfig, db: StateDB, env: str) -> Path:
    """The serving release's migrations; before the first deploy, the repo's."""
    state = db.env_state(env)
    base = Path(state["spec"]["release_dir"]) if state and state.get("spec") else loaded.repo_dir
    return base / loaded.config.database.migrations


@contextmanager
def _locked(db: StateDB, env: str, what: str) -> Iterator[str]:
    owner = f"{env}-{what}-{secrets.token_hex(3)}"
    lock.acquire(db, env, owner)
    try:
        yield owner
    finally:
        lock.release(db, env, owner)


def migrate(
    env: str,
    action: str,
    to: int | None = None,
    dry_run: bool = False,
    config_path: Path | None = None,
) -> Result:
    if action not in ("status", "up", "down"):
        raise ConfigError(
            f"unknown migrate action {action!r}", next_action="use status, up or down"
        )
    if action == "down" and to is None:
        raise ConfigError(
            "migrate down needs --to N", next_action="e.g. shiplane migrate dev down --to 1"
        )
    with open_app(config_path, env) as (loaded, layout, db):
        recover_stale(loaded, layout, db)
        db_path = _db_path(loaded, layout, env)
        layout.ensure(env)
        files = discover(_migrations_dir(loaded, db, env))
        migrator = SqliteMigrator(db_path)
        plan = migrator.plan(files)
        result = Result(command=f"migrate {action}", env=env)
        result.data.update(database=str(db_path), **plan.to_dict())
        if action == "status":
            return result
        if dry_run:
            if action == "up":
                todo = [m for m in plan.pending if to is None or m.version <= to]
                result.data["would_apply"] = [
                    {"migration": m.label, "statements": m.statements("up")} for m in todo
                ]
            else:
                result.data["would_revert"] = [
                    f"{a['version']:03d}_{a['name']}"
                    for a in reversed(plan.applied) if a["version"] > (to or 0)
                ]  # fmt: skip
            result.data["dry_run"] = True
            return result
        with _locked(db, env, "migrate"):
            migrator.check_not_edited(plan)
            backup = create_backup(
                db_path, layout.backups(env), {"env": env, "reason": f"migrate {action}",
                                               "migrations": plan.to_dict()["applied"]},
            )  # fmt: skip
            if action == "up":
                result.data["applied_now"] = migrator.up(files, to=to)
            else:
                assert to is not None
                result.data["reverted_now"] = migrator.down(files, to=to)
            result.data["backup_id"] = backup["id"]
            result.data.update(migrator.plan(files).to_dict())
        return result


def backup(env: str, config_path: Path | None = None) -> Result:
    with open_app(config_path, env) as (loaded, layout, db):
        db_path = _db_path(loaded, layout, env)
        layout.ensure(env)
        state = db.env_state(env)
        applied = [f"{a['version']:03d}_{a['name']}" for a in SqliteMigrator(db_path).applied()]
        manifest = create_backup(
            db_path, layout.backups(env),
            {"env": env, "reason": "manual", "sha": state["sha"] if state else None,
             "release": state["release"] if state else None, "migrations": applied},
        )  # fmt: skip
        result = Result(command="backup", env=env)
        result.data["backup"] = _public(manifest)
        return result


def backups(env: str, config_path: Path | None = None) -> Result:
    with open_app(config_path, env) as (_loaded, layout, _db):
        result = Result(command="backups", env=env)
        result.data["backups"] = [_public(m) for m in list_backups(layout.backups(env))]
        return result


def restore(env: str, backup_id: str, config_path: Path | None = None) -> Result:
    with open_app(config_path, env) as (loaded, layout, db):
        db_path = _db_path(loaded, layout, env)
        directory = layout.backups(env) / backup_id
        if "/" in backup_id or not directory.is_dir():
            raise ConfigError(
                f"no backup {backup_id!r} for {env}",
                next_action=f"list them with `shiplane backups {env}`",
            )
        with _locked(db, env, "restore"):
            safety = create_backup(
                db_path, layout.backups(env), {"env": env, "reason": "pre-restore"}
            )
            manifest = restore_backup(directory, db_path)
            applied = SqliteMigrator(db_path).applied()
        result = Result(command="restore", env=env)
        result.data.update(
            restored=_public(manifest),
            safety_backup=safety["id"],
            migrations=[f"{a['version']:03d}_{a['name']}" for a in applied],
        )
        return result


def _public(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "created_at", "env", "sha", "release", "reason", "migrations", "size", "sha256")
    return {k: manifest.get(k) for k in keys}
