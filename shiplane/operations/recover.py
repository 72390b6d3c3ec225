"""Finishing what a killed shiplane left: the saga resumes from its records (undo before the
pivot, roll forward after it)."""

from __future__ import annotations

import os
import socket
import sqlite3
from typing import Any

import psycopg

from shiplane.backup.leftovers import clean
from shiplane.config.loader import env_settings
from shiplane.databases.env_database import open_env_database
from shiplane.errors import DeployFailedError, LockHeldError, ShiplaneError
from shiplane.operations.session import Session
from shiplane.operations.settings import settings_for
from shiplane.pipeline.context import Context, DeployLog
from shiplane.pipeline.plans import step_classes
from shiplane.pipeline.saga import resume
from shiplane.results import Result
from shiplane.state import lock, running
from shiplane.state.db import now


def _abandoned(deployment: dict[str, Any]) -> bool:
    pid = int(deployment["pid"]) if deployment["pid"] is not None else None
    return not running.owner_alive(deployment["id"], pid)


def recover(session: Session) -> Result:
    """`shiplane recover`: the boundary has already recovered; report what it did."""
    result = Result(command="recover")
    result.data["recovered"] = session.recovered
    return result


def recover_stale(session: Session) -> list[dict[str, Any]]:
    """Resolve every deployment whose process died mid-run. Returns what was done."""
    outcomes = []
    for deployment in session.db.running_deployments():
        if not _abandoned(deployment):
            continue
        outcome = _recover_one(session, deployment)
        if outcome is not None:
            outcomes.append(outcome)
    _drop_dead_locks(session)
    outcomes.extend(_clean_restores(session))
    return outcomes


def _clean_restores(session: Session) -> list[dict[str, Any]]:
    """What a killed backup or restore left: a SQLite hot journal (rolled back), a swap half
    done (PostgreSQL: the live database back under its name), temp files and scratch. An env
    whose lock a live operation holds is left alone: what is there is still being written."""
    outcomes = []
    for env in session.loaded.config.environments:
        if lock.holder(session.db, env) is not None:
            continue
        done: list[str] = []
        try:
            database = open_env_database(session.layout, env_settings(session.loaded, env))
            settled = database.settle({}) if database is not None else None
            done += [settled] if settled else []
            done += clean(session.layout.backups(env), database)
        except (ShiplaneError, OSError, sqlite3.Error, psycopg.Error):
            # Its database cannot be reached now (a secret missing, a server down): the
            # command goes on, and the next one tries again.
            continue
        if done:
            outcomes.append({"env": env, "status": "cleaned", "action": "; ".join(done)})
    return outcomes


def _drop_dead_locks(session: Session) -> None:
    """A lock whose holder died after its deployment was settled protects nothing."""
    for held in session.db.locks():
        if not lock.holder_alive(held):
            lock.release(session.db, held["env"], held["deployment_id"])


def _recover_one(session: Session, deployment: dict[str, Any]) -> dict[str, Any] | None:
    db, env = session.db, deployment["env"]
    if env not in session.loaded.config.environments:
        return None  # its config is gone: nothing here knows how to undo it; leave the record
    recovery_id = f"{deployment['id']}-recovery"
    held = lock.holder(db, env)
    if held is not None and held["deployment_id"] != deployment["id"] and lock.holder_alive(held):
        return None  # someone live holds the env; they will see it through
    try:
        lock.acquire(db, env, recovery_id)
    except LockHeldError:
        return None
    current = db.deployment(deployment["id"])
    if current is None or current["status"] != "running":
        # Another operation recovered it between our listing and our lock.
        lock.release(db, env, recovery_id)
        return None
    settings = settings_for(session.loaded, db, env)
    log = DeployLog(session.layout.deploy_log(env, deployment["id"]), settings.redactor())
    ctx = Context(
        layout=session.layout,
        db=db,
        target=session.target,
        env=env,
        deployment_id=deployment["id"],
        log=log,
        redact=settings.redactor(),
        loaded=session.loaded,
        settings=settings,
    )
    log(f"== recovery by pid {socket.gethostname()}:{os.getpid()}")
    steps = db.steps(deployment["id"])
    try:
        outcome, undone = resume(ctx, steps, step_classes(deployment["kind"]))
        if outcome == "forward":
            status, action = "succeeded", "rolled forward (the new release had passed its switch)"
            error = None
        else:
            status, action = "recovered", "undone: " + ("; ".join(undone) or "nothing to undo")
            error = DeployFailedError(
                f"interrupted; recovery {action}",
                step=steps[-1]["name"] if steps else None,
                next_action="deploy again",
            )
        db.update_deployment(
            deployment["id"],
            status=status,
            finished_at=now(),
            exit_code=error.exit_code if error else 0,
            error={**error.to_dict(), "undone": undone} if error else None,
        )
    finally:
        lock.release(db, env, recovery_id)
        lock.release(db, env, deployment["id"])
        log.close()
    return {"deployment_id": deployment["id"], "env": env, "status": status, "action": action}
