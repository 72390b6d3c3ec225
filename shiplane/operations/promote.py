"""`shiplane promote ENV [--approve]`, `shiplane approve ID`, `shiplane reject ID`.

Promotion is the only road into an environment with ``promote_from``: the verified commit of
the source env, fast-forwarded onto the env's branch, its release reused when the build is
environment-independent, backed up, migrated, verified green, switched, smoked.
"""

from __future__ import annotations

from typing import Any

from shiplane.caller import Caller
from shiplane.config.loader import LoadedConfig, env_settings
from shiplane.errors import ConfigError, RefusedError
from shiplane.gate.challenges import Binding
from shiplane.ids import new_id
from shiplane.operations import serving, watch
from shiplane.operations.decide import person_decision
from shiplane.operations.execute import execute, make_context, refused_by_preflight
from shiplane.operations.gate import evidence_for, pinned_checks_hold
from shiplane.operations.session import Session
from shiplane.pipeline.forward_hold import held_summary
from shiplane.results import Result
from shiplane.state.db import StateDB, now


def promote_source(loaded: LoadedConfig, env: str) -> str:
    source = env_settings(loaded, env).env_config.promote_from
    if source is None:
        raise ConfigError(
            f"environments.{env}.promote_from is not set: {env} takes plain deploys",
            next_action=f'shiplane deploy {env}, or set promote_from = "dev" to gate it',
        )
    return source


def check_promote(loaded: LoadedConfig, env: str) -> None:
    promote_source(loaded, env)


def promote(
    session: Session,
    env: str,
    approve: bool,
    include_rolled_back: bool = False,
    redeploy: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    wait_watch: bool = False,
) -> Result:
    loaded, db, caller = session.loaded, session.db, session.caller
    evidence = evidence_for(loaded, db, session.layout.repo, env, promote_source(loaded, env))
    pinned_checks_hold(loaded, db, env)
    state = None if redeploy else serving.check(session, env, evidence["sha"])
    if state is not None:
        url = session.target.traffic(env, loaded.config.environments[env].port).url() + "/"
        result = serving.no_op("promote", env, state, url)
        result.data["evidence"] = evidence
        return result
    decider: Caller | None = None
    if loaded.config.environments[env].requires_approval:
        if not approve:
            promotion = _create(db, env, evidence, caller, "pending", None)
            result = Result(command="promote", env=env).fail(
                RefusedError(
                    f"{env} requires a person's approval; promotion "
                    f"{promotion['id']} of {evidence['sha'][:7]} is pending",
                    step="approval",
                    next_action=f"a person runs: shiplane approve {promotion['id']}",
                )
            )
            result.data.update(promotion=promotion, evidence=evidence)
            return result
        decider = person_decision(session, Binding("promote", env, "", evidence["sha"]))
    promotion = _create(db, env, evidence, caller, "approved", decider)
    return _run(
        session, env, promotion, evidence, include_rolled_back, hold_timeout, wait_drain, wait_watch
    )


def approve(session: Session, promotion_id: str, include_rolled_back: bool = False) -> Result:
    db = session.db
    promotion = _pending(db, promotion_id)
    env = promotion["env"]
    decider = person_decision(session, Binding("approve", env, promotion_id, promotion["sha"]))
    # The evidence must still hold: fresh verification, branch not diverged.
    evidence = evidence_for(
        session.loaded,
        db,
        session.layout.repo,
        env,
        promote_source(session.loaded, env),
        sha=promotion["sha"],
    )
    pinned_checks_hold(session.loaded, db, env)
    db.decide_promotion(promotion_id, "approved", decider.label)
    return _run(
        session, env, db.promotion(promotion_id) or promotion, evidence, include_rolled_back
    )


def reject(session: Session, promotion_id: str) -> Result:
    promotion = _pending(session.db, promotion_id)
    session.db.decide_promotion(promotion_id, "rejected", session.caller.label)
    result = Result(command="reject", env=promotion["env"])
    result.data["promotion"] = session.db.promotion(promotion_id)
    return result


def _run(
    session: Session,
    env: str,
    promotion: dict[str, Any],
    evidence: dict[str, Any],
    include_rolled_back: bool = False,
    hold_timeout: float | None = None,
    wait_drain: bool = False,
    wait_watch: bool = False,
) -> Result:
    db = session.db
    reuse = evidence["source_release_dir"] if session.loaded.config.app.reuse_build else None
    options = {
        "sha": evidence["sha"],
        "backup": True,
        "reuse_release": reuse,
        "include_rolled_back": include_rolled_back,
        "fingerprint": True,
        "hold_timeout": hold_timeout,
        "wait_drain": wait_drain,
    }
    ctx = make_context(session, env, "promote", options)
    db.set_promotion_deployment(promotion["id"], ctx.deployment_id)
    # The target env's TLS, port and domains must work before the branch moves or anything
    # is built: the same preflight as deploy and rollback, recorded as the outcome.
    result = refused_by_preflight(session, ctx, "promote") or execute(ctx, "promote")
    db.decide_promotion(
        promotion["id"], "done" if result.ok else "failed", promotion.get("decided_by")
    )
    result.data.update(
        sha=evidence["sha"],
        release=ctx.facts.release,
        evidence=evidence,
        promotion=db.promotion(promotion["id"]),
        reused_build=bool(ctx.facts.reused),
        hold=held_summary(ctx),
        hold_seconds=ctx.facts.hold_seconds,
    )
    # "evidence" is what let the commit in; what this deploy gives for promoting further:
    result.data["deploy_evidence"] = watch.after_switch(session, ctx, result, wait_watch)
    return result


def _create(
    db: StateDB,
    env: str,
    evidence: dict[str, Any],
    requested_by: Caller,
    status: str,
    decided_by: Caller | None,
) -> dict[str, Any]:
    promotion_id = new_id(env, prefix="p-")
    db.create_promotion(
        id=promotion_id,
        env=env,
        source=evidence["source"],
        sha=evidence["sha"],
        verification_id=evidence["verification_id"],
        status=status,
        requested_by=requested_by.label,
        requested_at=now(),
        decided_by=decided_by.label if decided_by else None,
        decided_at=now() if decided_by else None,
    )
    created = db.promotion(promotion_id)
    assert created is not None
    return created


def _pending(db: StateDB, promotion_id: str) -> dict[str, Any]:
    promotion = db.promotion(promotion_id)
    if promotion is None:
        raise ConfigError(
            f"no promotion {promotion_id!r}",
            next_action="promotion ids are in the JSON of `shiplane promote`",
        )
    if promotion["status"] != "pending":
        raise RefusedError(
            f"promotion {promotion_id} is {promotion['status']}, not pending",
            step="approval",
            next_action=f"shiplane promote {promotion['env']} to request a new one",
        )
    return promotion
