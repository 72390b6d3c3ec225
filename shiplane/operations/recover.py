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
from shiplane.errors import (
    ConfigError,
    DeployFailedError,
    LockHeldError,
    RollbackFailedError,
    ShiplaneError,
)
from shiplane.operations.session import Session
from shiplane.operations.settings import settings_for
from shiplane.pipeline.context import Context, DeployLog
from shiplane.pipeline.plans import step_classes
from shiplane.pipeline.saga import resume
from shiplane.results import Result
from shiplane.state import lock, running
from shiplane.state.db import now

RESOLVE = (
    "a person reads `shiplane logs {id}`, fixes what the undo left by hand, then runs "
    "`shiplane recover --resolve {id}`"
)


def _abandoned(deployment: dict[str, Any]) -> bool:
    pid = int(deployment["pid"]) if deployment["pid"] is not None else None
    return not running.owner_alive(deployment["id"], pid)


def recover(session: Session, resolve: str | None = None) -> Result:
    """`shiplane recover`: the boundary has already recovered; report what it did, and what
    still waits for a person (an undo that failed). ``resolve``: a person has looked at that
    deployment and says it is settled; the record keeps the failure and adds who said so."""
    result = Result(command="recover resolve" if resolve else "recover")
    result.data["recovered"] = session.recovered
    if resolve is not None:
        result.deployment_id = resolve
        result.data["resolved"] = resolve_failed_undo(session, resolve)
    result.data["unresolved"] = unresolved(session)
    return result


def unresolved(session: Session) -> list[dict[str, Any]]:
    """Deployments whose undo failed and that nobody has resolved yet."""
    rows = session.db.conn.execute(
        "SELECT DISTINCT d.id, d.env FROM deployments d JOIN steps s ON s.deployment_id = d.id"
        " WHERE s.status = 'undo_failed' AND d.resolved_at IS NULL ORDER BY d.started_at"
    ).fetchall()
    return [
        {"deployment_id": r["id"], "env": r["env"], "next_action": RESOLVE.format(id=r["id"])}
        for r in rows
    ]


def resolve_failed_undo(session: Session, deployment_id: str) -> dict[str, Any]:
    db = session.db
    deployment = db.deployment(deployment_id)
    if deployment is None:
        raise ConfigError(
            f"no deployment {deployment_id!r}", next_action="list them with `shiplane history`"
        )
    failed = [s["name"] for s in db.steps(deployment_id) if s["status"] == "undo_failed"]
    if not failed or deployment["status"] == "running":
        raise ConfigError(
            f"deployment {deployment_id} has no failed undo to resolve"
            + (" (it is still running)" if deployment["status"] == "running" else ""),
            step="usage",
            next_action="`shiplane recover` lists the ones that wait for a person",
        )
    if deployment.get("resolved_at"):
        return {"steps": failed, "by": deployment["resolved_by"], "at": deployment["resolved_at"]}
    db.update_deployment(deployment_id, resolved_by=session.caller.label, resolved_at=now())
    return {"steps": failed, "by": session.caller.label, "at": now()}


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
        try:
            if any(step["status"] == "undo_failed" for step in steps):
                # Its undo had already failed before the crash: nothing here can redo it
                # safely, and "recovered" would hide it. A person resolves it.
                raise RollbackFailedError(
                    "undo failed before the crash for "
                    + ", ".join(s["name"] for s in steps if s["status"] == "undo_failed"),
                    step="undo",
                    next_action=RESOLVE.format(id=deployment["id"]),
                )
            outcome, undone = resume(ctx, steps, step_classes(deployment["kind"]))
        except RollbackFailedError as failed:
            failed.next_action = RESOLVE.format(id=deployment["id"])
            db.update_deployment(
                deployment["id"],
                status="rollback_failed",
                finished_at=now(),
                exit_code=failed.exit_code,
                error={**failed.to_dict(), "undone": []},
            )
            return {
                "deployment_id": deployment["id"],
                "env": env,
                "status": "undo_failed",
                "action": failed.message,
                "next_action": failed.next_action,
            }
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
