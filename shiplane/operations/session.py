"""Opening everything an operation needs, and running a pipeline into a Result."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.config.loader import EnvSettings, LoadedConfig, env_settings, load_config
from shiplane.databases.for_env import database_url
from shiplane.errors import ConfigError, LockHeldError, RollbackFailedError, ShiplaneError
from shiplane.layout import Layout
from shiplane.pipeline.context import Context, DeployLog, Progress
from shiplane.pipeline.saga import SagaFailed, Step, run_steps
from shiplane.results import Result
from shiplane.server.client import ServerClient
from shiplane.state import lock
from shiplane.state.db import StateDB, now
from shiplane.verify.runner import load_checks


def new_deployment_id(env: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{env}-{stamp}-{secrets.token_hex(2)}"


def load_validated(config_path: Path | None, env: str | None = None) -> LoadedConfig:
    """Load the config and check the env exists, before anything is written to disk."""
    loaded = load_config(config_path)
    load_checks(loaded)  # a bad checks file is a config error too, found before any work
    if env is not None:
        env_settings(loaded, env)
    return loaded


@contextmanager
def open_root(loaded: LoadedConfig) -> Iterator[tuple[Layout, StateDB]]:
    layout = Layout.for_app(loaded.config.app.name)
    layout.ensure()
    db = StateDB(layout.state_db)
    try:
        yield layout, db
    finally:
        db.close()


@contextmanager
def open_app(
    config_path: Path | None, env: str | None = None
) -> Iterator[tuple[LoadedConfig, Layout, StateDB]]:
    """Load and validate first (bad input changes nothing), then open the deploy root."""
    loaded = load_validated(config_path, env)
    with open_root(loaded) as (layout, db):
        yield loaded, layout, db


def build_env(settings: EnvSettings) -> dict[str, str]:
    """Environment for build commands: the env's variables, never its secrets."""
    env = dict(os.environ)
    env.pop("SHIPLANE_FAULT", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(settings.variables)
    env["SHIPLANE_ENV"] = settings.name
    return env


def check_port(server: ServerClient, env: str, port: int) -> None:
    """The env's port must be free, or be our own front door for this env."""
    if server.ping() is not None:
        active = server.request("GET", f"/envs/{env}/active")
        if active.get("port") == port:
            return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            raise ConfigError(
                f"environments.{env}.port = {port}: the port is in use by another program "
                f"({exc.strerror})",
                step="preflight",
                next_action=f"stop what listens on {port} or choose another port for {env}",
            ) from exc


def make_context(
    loaded: LoadedConfig,
    layout: Layout,
    db: StateDB,
    env: str,
    kind: str,
    progress: Progress | None,
    options: dict[str, Any],
) -> Context:
    settings = env_settings(loaded, env)
    layout.ensure(env)
    deployment_id = new_deployment_id(env)
    redact = settings.redactor()
    log = DeployLog(layout.deploy_log(env, deployment_id), redact)
    db.create_deployment(
        id=deployment_id,
        env=env,
        kind=kind,
        pid=os.getpid(),
        log_path=str(log.path),
        forced=int(bool(options.get("force"))),
    )
    ctx = Context(
        layout=layout,
        db=db,
        server=ServerClient(layout),
        env=env,
        deployment_id=deployment_id,
        log=log,
        redact=redact,
        loaded=loaded,
        settings=settings,
        options=options,
    )
    if progress is not None:
        ctx.progress = progress
    state = db.env_state(env)
    ctx.facts.update(
        database_url=database_url(layout, settings),
        previous_release=state["release"] if state else None,
        previous_sha=state["sha"] if state else None,
        process_env=build_env(settings),
    )
    return ctx


def execute(ctx: Context, command: str, steps: list[Step]) -> Result:
    """Run the steps as a saga and turn the outcome into a Result (never raises ShiplaneError)."""
    result = Result(command=command, env=ctx.env, deployment_id=ctx.deployment_id)
    try:
        run_steps(ctx, steps, result.steps)
        ctx.db.update_deployment(
            ctx.deployment_id, status="succeeded", finished_at=now(), exit_code=0
        )
    except SagaFailed as failed:
        error = failed.error
        status = "refused" if isinstance(error, LockHeldError) else "rolled_back"
        if any(s.name == "drain" and s.status == "done" for s in result.steps):
            status = "succeeded_with_errors"
        fill_error(result, error, undone=failed.undone)
        ctx.db.update_deployment(
            ctx.deployment_id, status=status, finished_at=now(),
            exit_code=error.exit_code, error=result.error,
        )  # fmt: skip
    except RollbackFailedError as error:
        fill_error(result, error, undone=[])
        ctx.db.update_deployment(
            ctx.deployment_id, status="rollback_failed", finished_at=now(),
            exit_code=error.exit_code, error=result.error,
        )  # fmt: skip
    finally:
        lock.release(ctx.db, ctx.env, ctx.deployment_id)
        ctx.log.close()
    result.data["log"] = str(ctx.log.path)
    if result.error is not None:
        result.error["message"] = ctx.redact(str(result.error["message"]))
        result.error["undone"] = [ctx.redact(u) for u in result.error["undone"]]
    return result


def fill_error(result: Result, error: ShiplaneError, undone: list[str]) -> None:
    result.ok = False
    result.exit_code = error.exit_code
    result.error = {**error.to_dict(), "undone": undone}
