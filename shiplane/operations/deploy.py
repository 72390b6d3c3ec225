"""`shiplane deploy ENV`: ref -> release -> build -> backup -> migrate -> green -> switch."""

from __future__ import annotations

from typing import Any

from shiplane.config.loader import LoadedConfig
from shiplane.errors import ConfigError, RefusedError, ShiplaneError
from shiplane.operations.execute import execute, make_context
from shiplane.operations.session import Session
from shiplane.operations.tls_check import check_tls
from shiplane.results import Result
from shiplane.state.db import now


def check_deploy(loaded: LoadedConfig, env: str, force: bool, caller_ok: bool) -> None:
    """Refusals found before anything is recorded. (A bad ``--ref`` is the client's to find:
    it resolves refs in the user's repository, the server never reads it.)"""
    source = loaded.config.environments[env].promote_from
    if source is not None and not (force and caller_ok):
        raise RefusedError(
            f"{env} is gated (promote_from = {source!r}): new code arrives only by promotion"
            + ("; --force needs a person at a terminal" if force else ""),
            step="gate",
            next_action=f"shiplane verify {source} && shiplane promote {env}",
        )


def deploy(
    session: Session,
    env: str,
    source: dict[str, Any] | None,
    force: bool,
    accept_drift: bool,
) -> Result:
    """Deploy the commit the client sent (``source``: see ``server_repo.SentSource``)."""
    if not source or not source.get("sha"):
        raise ConfigError(
            "deploy needs the commit: a client resolves the ref and pushes it to the server's "
            "repository first",
            next_action="run `shiplane deploy ENV` from your app's repository",
        )
    loaded = session.loaded
    gated = loaded.config.environments[env].gated
    options = {"source": source, "force": force and gated, "accept_drift": accept_drift}
    ctx = make_context(session, env, "deploy", options)
    port = ctx.settings.env_config.port
    try:
        check_tls(ctx.settings)
        session.target.preflight(env, port, tuple(ctx.settings.env_config.domains))
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
    return result
