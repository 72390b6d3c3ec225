"""`shiplane deploy ENV`: ref -> release -> build -> backup -> migrate -> green -> switch."""

from __future__ import annotations

from pathlib import Path

from shiplane import gitops
from shiplane.actor import at_terminal
from shiplane.errors import RefusedError, ShiplaneError
from shiplane.operations.recover import recover_stale
from shiplane.operations.session import (
    check_port,
    execute,
    fill_error,
    load_validated,
    make_context,
    open_root,
)
from shiplane.pipeline.context import Progress
from shiplane.pipeline.saga import Step
from shiplane.pipeline.steps_database import BackupStep, MigrateStep
from shiplane.pipeline.steps_guard import GuardStep
from shiplane.pipeline.steps_record import PruneStep, RecordStep
from shiplane.pipeline.steps_source import BuildStep, ExportStep, LockStep, ResolveStep
from shiplane.pipeline.steps_traffic import DrainStep, HealthStep, StartStep, SwitchStep
from shiplane.pipeline.steps_verify import SmokeStep, VerifyStep
from shiplane.results import Result
from shiplane.server.client import ServerClient


def deploy_steps() -> list[Step]:
    return [
        LockStep(), ResolveStep(), ExportStep(), BuildStep(), GuardStep(), BackupStep(),
        MigrateStep(),
        StartStep(), HealthStep(), VerifyStep(), SwitchStep(), SmokeStep(), DrainStep(),
        RecordStep(), PruneStep(),
    ]  # fmt: skip


def deploy(
    env: str,
    ref: str | None = None,
    config_path: Path | None = None,
    progress: Progress | None = None,
    force: bool = False,
    accept_drift: bool = False,
) -> Result:
    loaded = load_validated(config_path, env)
    source = loaded.config.environments[env].promote_from
    if source is not None and not (force and at_terminal()):
        raise RefusedError(
            f"{env} is gated (promote_from = {source!r}): new code arrives only by promotion"
            + ("; --force needs a person at a terminal" if force else ""),
            step="gate",
            next_action=f"shiplane verify {source} && shiplane promote {env}",
        )
    repo = gitops.ensure_repo(loaded.repo_dir)
    if ref is not None:
        gitops.resolve(repo, ref)  # a bad ref is a usage error: exit 64, nothing recorded
    with open_root(loaded) as (layout, db):
        settings_env = loaded.config.environments.get(env)
        recovered = recover_stale(loaded, layout, db)
        options = {"ref": ref, "force": force and source is not None, "accept_drift": accept_drift}
        ctx = make_context(loaded, layout, db, env, "deploy", progress, options)
        assert settings_env is not None
        try:
            check_port(ServerClient(layout), env, settings_env.port)
        except ShiplaneError as exc:
            result = Result(command="deploy", env=env, deployment_id=ctx.deployment_id)
            fill_error(result, exc, undone=[])
            db.update_deployment(ctx.deployment_id, status="refused", exit_code=exc.exit_code,
                                 error=result.error)  # fmt: skip
            ctx.log.close()
            return result
        result = execute(ctx, "deploy", deploy_steps())
        result.data.update(
            sha=ctx.facts.get("sha"),
            release=ctx.facts.get("release"),
            url=f"http://127.0.0.1:{settings_env.port}/",
            recovered=recovered,
        )
        if gitops.is_dirty(repo):
            result.warnings.append(
                "the working tree has uncommitted changes: they were not deployed"
            )
        return result
