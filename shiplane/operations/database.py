"""Database operations outside a deploy: migrate status/up/down, backup, backups, restore."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shiplane.backup import create_backup, list_backups, prune_backups
from shiplane.backup.archive import read_manifest
from shiplane.backup.checked import checked_restore
from shiplane.backup.encrypt import for_env
from shiplane.config.loader import LoadedConfig, env_settings
from shiplane.databases import Database
from shiplane.databases.env_database import open_env_database
from shiplane.errors import ConfigError, RefusedError
from shiplane.gate.challenges import Binding
from shiplane.gate.guard import gated_envs, read_pins
from shiplane.layout import Layout
from shiplane.migrate.registry import discover_for, engine_for
from shiplane.operations.decide import person_decision
from shiplane.operations.session import Session
from shiplane.results import Result
from shiplane.state import lock
from shiplane.state.db import StateDB, record_fingerprint
from shiplane.targets.pausing import workers_paused


def database_for(loaded: LoadedConfig, layout: Layout, env: str) -> Database:
    database = open_env_database(layout, env_settings(loaded, env))
    if database is None:
        raise ConfigError(
            f"environment {env!r} has no database (database.url is not set)",
            next_action='set [database] url = "sqlite:///app.db" in shiplane.toml',
        )
    return database


def serving_release_dir(loaded: LoadedConfig, db: StateDB, env: str) -> Path:
    """The serving release: code is read from a release, never from a client's files. Before
    the first deploy there is none; the directory of the config (on the server its copy,
    which holds no code) then stands for "no migrations known yet"."""
    state = db.env_state(env)
    return Path(state["spec"]["release_dir"]) if state and state.get("spec") else loaded.repo_dir


@contextmanager
def env_lock(db: StateDB, env: str, what: str) -> Iterator[str]:
    owner = f"{env}-{what}-{secrets.token_hex(3)}"
    lock.acquire(db, env, owner)
    try:
        yield owner
    finally:
        lock.release(db, env, owner)


def backup(session: Session, env: str) -> Result:
    state = session.db.env_state(env)
    release = serving_release_dir(session.loaded, session.db, env)
    return _backup(session, env, state, release)


def backup_without_state(session: Session, env: str) -> Result:
    """A backup while state.db is damaged: what serves is read from the env's ``current``
    link instead (the database needs no history to be copied)."""
    current = session.layout.current(env)
    release = current.resolve() if current.is_dir() else session.loaded.repo_dir
    state = {"sha": None, "release": release.name} if current.is_dir() else None
    result = _backup(session, env, state, release)
    result.warnings.append(
        f"state.db is damaged ({session.layout.state_db}): the backup was taken without it; "
        "a person runs `shiplane state restore`"
    )
    return result


def _backup(session: Session, env: str, state: dict[str, Any] | None, release: Path) -> Result:
    loaded, layout = session.loaded, session.layout
    database = database_for(loaded, layout, env)
    layout.ensure(env)
    applied = engine_for(loaded.config, database).status(release).to_dict()["applied"]
    manifest = create_backup(
        database,
        layout.backups(env),
        {
            "env": env,
            "reason": "manual",
            "sha": state["sha"] if state else None,
            "release": state["release"] if state else None,
            "migrations": applied,
        },
        for_env(loaded.config.environments[env].backup_encryption, layout.server.root),
    )
    settings = env_settings(loaded, env)
    pruned = prune_backups(
        layout.backups(env), settings.env_config.backups_keep, settings.env_config.backups_keep_days
    )
    result = Result(command="backup", env=env)
    result.data.update(backup=_public(manifest), pruned=pruned)
    return result


def backups(session: Session, env: str) -> Result:
    result = Result(command="backups", env=env)
    result.data["backups"] = [_public(m) for m in list_backups(session.layout.backups(env))]
    return result


def restore(session: Session, env: str, backup_id: str, discard_writes: bool = False) -> Result:
    """A checked restore: refused (exit 6) when the database was written since the backup,
    unless ``discard_writes`` (then saved first as a pre-restore backup); refused when the
    backup's migrations are not the serving release's (`rollback --to R --restore-db`)."""
    loaded, layout, db = session.loaded, session.layout, session.db
    database = database_for(loaded, layout, env)
    directory = layout.backups(env) / backup_id
    if "/" in backup_id or not directory.is_dir():
        raise ConfigError(
            f"no backup {backup_id!r} for {env}",
            next_action=f"list them with `shiplane backups {env}`",
        )
    if discard_writes and env in gated_envs(loaded, read_pins(db)):
        # Discarding acknowledged writes in a gated env is a person's decision (issue 13).
        person_decision(session, Binding("restore", env, backup_id, ""))
    release = serving_release_dir(loaded, db, env)
    engine = engine_for(loaded.config, database)
    _check_release_matches(loaded, db, env, release, read_manifest(directory))
    encryption = for_env(loaded.config.environments[env].backup_encryption, layout.server.root)
    with env_lock(db, env, "restore"):
        outcome = checked_restore(
            database,
            layout.backups(env),
            backup_id,
            env=env,
            discard_writes=discard_writes,
            ignore=engine.bookkeeping,
            encryption=encryption,
            quiesce=workers_paused(session.target, env),
        )
        manifest = outcome["restored"]
        record_fingerprint(db, env, database.fingerprint(), f"restore {backup_id}")
        applied = engine.status(release).to_dict()["applied"]
    result = Result(command="restore", env=env)
    result.data.update(
        restored=_public(manifest),
        safety_backup=outcome["pre_restore_backup"],
        pre_restore_backup=outcome["pre_restore_backup"],
        discarded=outcome["written_since"],
        migrations=applied,
        verified=manifest.get("verified"),
    )
    return result


def _check_release_matches(
    loaded: LoadedConfig, db: StateDB, env: str, release: Path, manifest: dict[str, Any]
) -> None:
    """The serving code must run on what the backup holds: its applied migrations are the
    serving release's, else the release goes back with it."""
    state = db.env_state(env)
    if not state or "migrations" not in manifest:
        return  # nothing serves yet, or a backup that does not say: nothing to run against
    wanted = [m.label for m in discover_for(loaded.config, release)]
    if manifest["migrations"] != wanted:
        raise RefusedError(
            f"backup {manifest['id']} has migrations {manifest['migrations']}, the serving "
            f"release {state['release']} expects {wanted}: its code would fail on it",
            step="restore",
            next_action=f"roll the release back with it: `shiplane rollback {env} --to "
            f"{manifest.get('release') or 'RELEASE'} --restore-db`",
        )


def _public(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "created_at", "env", "sha", "release", "reason", "migrations", "size", "sha256")
    return {k: manifest.get(k) for k in keys}
