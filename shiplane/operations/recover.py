"""Finishing what a killed shiplane left: undo before the pivot, roll forward after it."""

from __future__ import annotations

import os
import socket
from typing import Any

from shiplane.config.loader import LoadedConfig, env_settings
from shiplane.config.redact import Redactor
from shiplane.errors import LockHeldError
from shiplane.layout import Layout
from shiplane.pipeline.context import Context, DeployLog
from shiplane.pipeline.saga import Step, undo_steps
from shiplane.pipeline.steps_database import BackupStep, MigrateDownStep, MigrateStep
from shiplane.pipeline.steps_guard import GuardStep
from shiplane.pipeline.steps_record import PruneStep, RecordStep, roll_forward
from shiplane.pipeline.steps_source import (
    BuildStep,
    ExportStep,
    LockStep,
    PromoteRefStep,
    ResolveStep,
)
from shiplane.pipeline.steps_traffic import DrainStep, HealthStep, StartStep, SwitchStep
from shiplane.pipeline.steps_verify import SmokeStep, VerifyStep
from shiplane.server.client import ServerClient
from shiplane.state import lock
from shiplane.state.db import StateDB, now
from shiplane.state.procs import process_alive

_COMMON: list[type[Step]] = [
    LockStep, ResolveStep, ExportStep, BuildStep, GuardStep, BackupStep, StartStep, HealthStep,
    VerifyStep, SwitchStep, SmokeStep, DrainStep, RecordStep, PruneStep,
]  # fmt: skip


def _registry(*classes: type[Step]) -> dict[str, type[Step]]:
    return {cls.name: cls for cls in classes}


STEPS: dict[str, dict[str, type[Step]]] = {
    "deploy": _registry(*_COMMON, MigrateStep),
    "promote": {**_registry(*_COMMON, MigrateStep), "resolve": PromoteRefStep},
    "rollback": _registry(*_COMMON, MigrateDownStep),
}


def _abandoned(deployment: dict[str, Any]) -> bool:
    return deployment["pid"] is None or not process_alive(int(deployment["pid"]))


def recover_stale(loaded: LoadedConfig | None, layout: Layout, db: StateDB) -> list[dict[str, Any]]:
    """Resolve every deployment whose process died mid-run. Returns what was done."""
    outcomes = []
    for deployment in db.running_deployments():
        if not _abandoned(deployment):
            continue
        outcome = _recover_one(loaded, layout, db, deployment)
        if outcome is not None:
            outcomes.append(outcome)
    _drop_dead_locks(db)
    return outcomes


def _drop_dead_locks(db: StateDB) -> None:
    """A lock whose holder died after its deployment was settled protects nothing."""
    for row in db.conn.execute("SELECT * FROM locks").fetchall():
        held = dict(row)
        if not lock.holder_alive(held):
            lock.release(db, held["env"], held["deployment_id"])


def _recover_one(
    loaded: LoadedConfig | None, layout: Layout, db: StateDB, deployment: dict[str, Any]
) -> dict[str, Any] | None:
    env = deployment["env"]
    recovery_id = f"{deployment['id']}-recovery"
    held = lock.holder(db, env)
    if held is not None and held["deployment_id"] != deployment["id"] and lock.holder_alive(held):
        return None  # someone live holds the env; they will see it through
    try:
        lock.acquire(db, env, recovery_id)
    except LockHeldError:
        return None
    log = DeployLog(layout.deploy_log(env, deployment["id"]), Redactor())
    known = loaded is not None and env in loaded.config.environments
    settings = env_settings(loaded, env) if loaded is not None and known else None
    ctx = Context(
        layout=layout, db=db, server=ServerClient(layout), env=env,
        deployment_id=deployment["id"], log=log, redact=Redactor(), loaded=loaded,
        settings=settings,
    )  # fmt: skip
    log(f"== recovery by pid {socket.gethostname()}:{os.getpid()}")
    steps = db.steps(deployment["id"])
    kind = deployment["kind"] if deployment["kind"] in STEPS else "deploy"
    try:
        if any(s["name"] == "drain" and s["status"] == "done" for s in steps):
            roll_forward(ctx, _forward_data(deployment, steps))
            status, action = "succeeded", "rolled forward (the new release had passed its switch)"
        else:
            registry = STEPS[kind]
            todo = [
                (s["seq"], registry[s["name"]](), s["data"])
                for s in steps
                if s["status"] in ("started", "done", "failed") and s["name"] in registry
            ]
            undone = undo_steps(ctx, todo)
            status, action = "recovered", "undone: " + ("; ".join(undone) or "nothing to undo")
        failed = status != "succeeded"
        error = {
            "step": _last_step(steps),
            "message": f"interrupted; recovery {action}",
            "next_action": "deploy again",
        }
        db.update_deployment(
            deployment["id"],
            status=status,
            finished_at=now(),
            exit_code=3 if failed else 0,
            error=error if failed else None,
        )
    finally:
        lock.release(db, env, recovery_id)
        lock.release(db, env, deployment["id"])
        log.close()
    return {"deployment_id": deployment["id"], "env": env, "status": status, "action": action}


def _last_step(steps: list[dict[str, Any]]) -> str | None:
    return steps[-1]["name"] if steps else None


def _forward_data(deployment: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    by_name = {s["name"]: s["data"] for s in steps}
    start = by_name["start"]
    spec = start["spec"]
    return {
        "release": spec["release"],
        "release_dir": spec["release_dir"],
        "sha": spec["sha"],
        "spec": spec,
        "instance_id": start["instance_id"],
        "new_release": deployment["kind"] in ("deploy", "promote"),
    }
