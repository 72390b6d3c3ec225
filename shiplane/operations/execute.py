"""Running one deployment's plan as a saga and recording its outcome."""

from __future__ import annotations

import os
from typing import Any

from shiplane.databases.env_database import database_url
from shiplane.errors import LockHeldError, RollbackFailedError, ShiplaneError
from shiplane.ids import new_id
from shiplane.logs_rotate import prune_deploy_logs
from shiplane.operations.session import Session
from shiplane.operations.settings import settings_for
from shiplane.operations.tls_check import check_tls
from shiplane.pipeline.context import Context, DeployLog
from shiplane.pipeline.plans import plan
from shiplane.pipeline.saga import SagaFailed, run_steps
from shiplane.procenv import child_environment
from shiplane.results import Result
from shiplane.state import lock, running
from shiplane.state.db import now
from shiplane.state.maintenance import MaintenanceStore


def make_context(session: Session, env: str, kind: str, options: dict[str, Any]) -> Context:
    settings = settings_for(session.loaded, session.db, env)
    layout, db = session.layout, session.db
    layout.ensure(env)
    deployment_id = new_id(env)
    running.claim(deployment_id)
    redact = settings.redactor()
    log = DeployLog(layout.deploy_log(env, deployment_id), redact)
    prune_deploy_logs(layout.logs(env), session.loaded.config.logs, spare=[log.path])
    db.create_deployment(
        id=deployment_id,
        env=env,
        kind=kind,
        pid=os.getpid(),
        log_path=str(log.path),
        forced=int(bool(options.get("force"))),
        actor=session.caller.label,
    )
    ctx = Context(
        layout=layout,
        db=db,
        target=session.target,
        env=env,
        deployment_id=deployment_id,
        log=log,
        redact=redact,
        loaded=session.loaded,
        settings=settings,
        options=options,
    )
    if session.progress is not None:
        ctx.progress = session.progress
    state = db.env_state(env)
    facts = ctx.facts
    facts.database_url = database_url(layout, settings)
    facts.previous_release = state["release"] if state else None
    facts.previous_sha = state["sha"] if state else None
    # Build commands get the env's variables (kept ones included), never its secrets.
    facts.process_env = child_environment(settings.variables, {"SHIPLANE_ENV": env})
    return ctx


def refused_by_preflight(session: Session, ctx: Context, command: str) -> Result | None:
    """The env's port must be free or be its own front door before anything moves (deploy,
    rollback): an orphaned server holding it would fail the switch half-way. The refusal is
    recorded as the deployment's outcome."""
    try:
        env_config = ctx.settings.env_config
        check_tls(ctx.settings)
        session.target.preflight(ctx.env, env_config.port, tuple(env_config.domains))
    except ShiplaneError as exc:
        result = Result(command=command, env=ctx.env, deployment_id=ctx.deployment_id).fail(exc)
        session.db.update_deployment(
            ctx.deployment_id,
            status="refused",
            finished_at=now(),
            exit_code=exc.exit_code,
            error=result.error,
        )
        ctx.log.close()
        return result
    return None


def execute(ctx: Context, kind: str) -> Result:
    """Run ``kind``'s plan as a saga and turn the outcome into a Result (never raises
    ShiplaneError)."""
    result = Result(command=kind, env=ctx.env, deployment_id=ctx.deployment_id)
    steps = plan(kind, ctx.target.traffic_steps)
    try:
        run_steps(ctx, steps, result.steps)
        ctx.db.update_deployment(
            ctx.deployment_id, status="succeeded", finished_at=now(), exit_code=0
        )
    except SagaFailed as failed:
        error = failed.error
        status = "refused" if isinstance(error, LockHeldError) else "rolled_back"
        if failed.past_pivot:
            status = "succeeded_with_errors"
        result.fail(error, failed.undone)
        ctx.db.update_deployment(
            ctx.deployment_id,
            status=status,
            finished_at=now(),
            exit_code=error.exit_code,
            error=result.error,
        )
    except RollbackFailedError as error:
        result.fail(error)
        ctx.db.update_deployment(
            ctx.deployment_id,
            status="rollback_failed",
            finished_at=now(),
            exit_code=error.exit_code,
            error=result.error,
        )
    finally:
        lock.release(ctx.db, ctx.env, ctx.deployment_id)
        ctx.log.close()
    result.data["log"] = str(ctx.log.path)
    # The page stays up through a deploy (shiplane.operations.maintenance): say so.
    result.data["maintenance"] = MaintenanceStore(ctx.db).current(ctx.env).enabled
    if result.error is not None:
        result.error["message"] = ctx.redact(str(result.error["message"]))
        result.error["undone"] = [ctx.redact(u) for u in result.error["undone"]]
    return result
