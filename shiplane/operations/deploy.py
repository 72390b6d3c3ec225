"""`shiplane deploy ENV`: ref -> release -> build -> backup -> migrate -> green -> switch."""

from __future__ import annotations

from typing import Any

from shiplane.config.loader import LoadedConfig
from shiplane.errors import ConfigError, RefusedError
from shiplane.gate.challenges import Binding
from shiplane.gate.guard import gated_envs, promotion_road, read_pins
from shiplane.operations import next_steps, serving, watch
from shiplane.operations.decide import person_decision
from shiplane.operations.execute import execute, make_context, refused_by_preflight
from shiplane.operations.session import Session
from shiplane.pipeline.forward_hold import held_summary
from shiplane.results import Result


def check_deploy(loaded: LoadedConfig, env: str, force: bool, ref: str | None = None) -> None:
    """Refusals found before anything is recorded (in the server, where the pins are known:
    ``shiplane.gate.guard`` refuses a gated environment pinned, this one the config's).
    A bad ``--ref`` is the client's to find: it resolves refs in the user's repository."""
    source = loaded.config.environments[env].promote_from
    if source is not None and not force:
        raise RefusedError(
            f"{env} is gated (promote_from = {source!r}): new code arrives only by promotion",
            step="gate",
            next_action=promotion_road(source, env, ref),
        )


def deploy(
    session: Session,
    env: str,
    source: dict[str, Any] | None,
    force: bool,
    accept_drift: bool,
    include_rolled_back: bool = False,
    redeploy: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    wait_watch: bool = False,
) -> Result:
    """Deploy the commit the client sent (``source``: see ``server_repo.SentSource``); a no-op
    when exactly that already serves, unless ``redeploy``."""
    if not source or not source.get("sha"):
        raise ConfigError(
            "deploy needs the commit: a client resolves the ref and pushes it to the server's "
            "repository first",
            next_action="run `shiplane deploy ENV` from your app's repository",
        )
    loaded = session.loaded
    gated = env in gated_envs(loaded, read_pins(session.db))
    if force and gated:
        # --force is the one way past the gate: a person's decision, with a factor.
        person_decision(session, Binding("deploy", env, "", str(source["sha"])))
    state = (
        None
        if redeploy
        else serving.check(session, env, serving.effective_sha(session, env, source))
    )
    if state is not None:
        url = session.target.traffic(env, loaded.config.environments[env].port).url() + "/"
        return serving.no_op("deploy", env, state, url)
    options = {
        "source": source,
        "force": force and gated,
        "accept_drift": accept_drift,
        "include_rolled_back": include_rolled_back,
        "fingerprint": True,
        "hold_timeout": hold_timeout,
        "wait_drain": wait_drain,
    }
    ctx = make_context(session, env, "deploy", options)
    refused = refused_by_preflight(session, ctx, "deploy")
    if refused is not None:
        return refused
    result = execute(ctx, "deploy")
    result.data.update(
        sha=ctx.facts.sha,
        release=ctx.facts.release,
        url=ctx.traffic().url() + "/",
        recovered=session.recovered,
        hold=held_summary(ctx),
        hold_seconds=ctx.facts.hold_seconds,
    )
    evidence = watch.after_switch(session, ctx, result, wait_watch)
    if evidence is not None:
        result.data["evidence"] = evidence
    if result.ok and ctx.facts.sha:
        result.data.update(
            next_steps.after_deploy(loaded, session.db, env, ctx.facts.sha, evidence)
        )
    return result
