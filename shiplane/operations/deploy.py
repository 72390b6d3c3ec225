"""`shiplane deploy ENV`: ref -> release -> build -> backup -> migrate -> green -> switch."""

from __future__ import annotations

from shiplane import gitops
from shiplane.config.loader import LoadedConfig
from shiplane.errors import RefusedError, ShiplaneError
from shiplane.operations.execute import execute, make_context
from shiplane.operations.session import Session
from shiplane.results import Result
from shiplane.state.db import now


def check_deploy(
    loaded: LoadedConfig, env: str, ref: str | None, force: bool, caller_ok: bool
) -> None:
    """Refusals and usage errors found before anything is recorded."""
    source = loaded.config.environments[env].promote_from
    if source is not None and not (force and caller_ok):
        raise RefusedError(
            f"{env} is gated (promote_from = {source!r}): new code arrives only by promotion"
            + ("; --force needs a person at a terminal" if force else ""),
            step="gate",
            next_action=f"shiplane verify {source} && shiplane promote {env}",
        )
    repo = gitops.ensure_repo(loaded.repo_dir)
    if ref is not None:
        gitops.resolve(repo, ref)  # a bad ref is a usage error: exit 64, nothing recorded


def deploy(session: Session, env: str, ref: str | None, force: bool, accept_drift: bool) -> Result:
    loaded = session.loaded
    gated = loaded.config.environments[env].gated
    options = {"ref": ref, "force": force and gated, "accept_drift": accept_drift}
    ctx = make_context(session, env, "deploy", options)
    port = ctx.settings.env_config.port
    try:
        session.target.preflight(env, port)
    except ShiplaneError as exc:
        result = Result(command="deploy", env=env, deployment_id=ctx.deployment_id).fail(exc)
        session.db.update_deployment(
            ctx.deployment_id,
            status="refused",
            finished_at=now(),
            exit_code=exc.exit_code,
            error=result.error,
        )
        ctx.log.close()
        return result
    result = execute(ctx, "deploy")
    result.data.update(
        sha=ctx.facts.sha,
        release=ctx.facts.release,
        url=ctx.traffic().url() + "/",
        recovered=session.recovered,
    )
    if gitops.is_dirty(gitops.ensure_repo(loaded.repo_dir)):
        result.warnings.append("the working tree has uncommitted changes: they were not deployed")
    return result
