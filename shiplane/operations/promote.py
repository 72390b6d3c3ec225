"""`shiplane promote ENV [--approve]`, `shiplane approve ID`, `shiplane reject ID`.

Promotion is the only road into an environment with ``promote_from``: the verified commit of
the source env, fast-forwarded onto the env's branch, its release reused when the build is
environment-independent, backed up, migrated, verified green, switched, smoked.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shiplane.actor import at_terminal, current_actor, is_agent
from shiplane.config.loader import LoadedConfig, env_settings
from shiplane.errors import ConfigError, RefusedError
from shiplane.layout import Layout
from shiplane.operations.deploy import deploy_steps
from shiplane.operations.gate import evidence_for
from shiplane.operations.recover import recover_stale
from shiplane.operations.session import execute, load_validated, make_context, open_root
from shiplane.pipeline.context import Progress
from shiplane.pipeline.steps_source import PromoteRefStep, ResolveStep
from shiplane.results import Result
from shiplane.state.db import StateDB, now


def promote_steps() -> list[Any]:
    return [PromoteRefStep() if isinstance(s, ResolveStep) else s for s in deploy_steps()]


def _source(loaded: LoadedConfig, env: str) -> str:
    source = env_settings(loaded, env).env.promote_from
    if source is None:
        raise ConfigError(
            f"environments.{env}.promote_from is not set: {env} takes plain deploys",
            next_action=f'shiplane deploy {env}, or set promote_from = "dev" to gate it',
        )
    return source


def promote(
    env: str,
    approve: bool = False,
    config_path: Path | None = None,
    progress: Progress | None = None,
) -> Result:
    loaded = load_validated(config_path, env)
    source = _source(loaded, env)
    actor = current_actor()
    with open_root(loaded) as (layout, db):
        recover_stale(loaded, layout, db)
        evidence = evidence_for(loaded, db, env, source)
        if loaded.config.environments[env].requires_approval:
            if not approve:
                promotion = _create(db, env, evidence, actor, "pending", None)
                approve_cmd = f"shiplane approve {promotion['id']}"
                result = Result(command="promote", env=env, ok=False, exit_code=6)
                result.error = {
                    "step": "approval",
                    "message": f"{env} requires a person's approval; promotion "
                    f"{promotion['id']} of {evidence['sha'][:7]} is pending",
                    "next_action": f"a person at a terminal runs: {approve_cmd}",
                    "undone": [],
                }
                result.data.update(promotion=promotion, evidence=evidence)
                return result
            _check_approver(actor, requested_by=actor)
        promotion = _create(db, env, evidence, actor, "approved", actor if approve else None)
        return _run(loaded, layout, db, env, promotion, evidence, progress)


def approve(promotion_id: str, config_path: Path | None = None,
            progress: Progress | None = None) -> Result:  # fmt: skip
    loaded = load_validated(config_path)
    actor = current_actor()
    with open_root(loaded) as (layout, db):
        recover_stale(loaded, layout, db)
        promotion = _pending(db, promotion_id)
        _check_approver(actor, requested_by=promotion["requested_by"])
        env = promotion["env"]
        # The evidence must still hold: fresh verification, branch not diverged.
        evidence = evidence_for(loaded, db, env, _source(loaded, env), sha=promotion["sha"])
        _decide(db, promotion_id, "approved", actor)
        promotion = _get(db, promotion_id) or promotion
        return _run(loaded, layout, db, env, promotion, evidence, progress)


def reject(promotion_id: str, config_path: Path | None = None) -> Result:
    loaded = load_validated(config_path)
    with open_root(loaded) as (_layout, db):
        promotion = _pending(db, promotion_id)
        _decide(db, promotion_id, "rejected", current_actor())
        result = Result(command="reject", env=promotion["env"])
        result.data["promotion"] = _get(db, promotion_id)
        return result


def _check_approver(actor: str, requested_by: str) -> None:
    if is_agent(actor):
        raise RefusedError(
            f"{actor} is an agent; approval needs a person", step="approval",
            next_action="ask a person to run `shiplane approve ID` at a terminal",
        )  # fmt: skip
    if not at_terminal():
        raise RefusedError(
            "approval needs a person at a terminal (stdin is not a terminal)", step="approval",
            next_action="run `shiplane approve ID` in an interactive shell",
        )  # fmt: skip
    if is_agent(requested_by) and actor == requested_by:
        raise RefusedError("the requesting agent cannot approve its own promotion", step="approval")


def _run(
    loaded: LoadedConfig,
    layout: Layout,
    db: StateDB,
    env: str,
    promotion: dict[str, Any],
    evidence: dict[str, Any],
    progress: Progress | None,
) -> Result:
    reuse = evidence["source_release_dir"] if loaded.config.app.reuse_build else None
    options = {"sha": evidence["sha"], "backup": True, "reuse_release": reuse}
    ctx = make_context(loaded, layout, db, env, "promote", progress, options)
    db.conn.execute(
        "UPDATE promotions SET deployment_id = ? WHERE id = ?", (ctx.deployment_id, promotion["id"])
    )
    result = execute(ctx, "promote", promote_steps())
    _decide(db, promotion["id"], "done" if result.ok else "failed", promotion.get("decided_by"))
    result.data.update(
        sha=evidence["sha"], release=ctx.facts.get("release"), evidence=evidence,
        promotion=_get(db, promotion["id"]), reused_build=bool(ctx.facts.get("reused")),
    )  # fmt: skip
    return result


def _create(
    db: StateDB, env: str, evidence: dict[str, Any], actor: str, status: str, decided_by: str | None
) -> dict[str, Any]:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    promotion_id = f"p-{env}-{stamp}-{secrets.token_hex(2)}"
    db.conn.execute(
        "INSERT INTO promotions (id, env, source, sha, verification_id, status, requested_by,"
        " requested_at, decided_by, decided_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (promotion_id, env, evidence["source"], evidence["sha"], evidence["verification_id"],
         status, actor, now(), decided_by, now() if decided_by else None),
    )  # fmt: skip
    created = _get(db, promotion_id)
    assert created is not None
    return created


def _get(db: StateDB, promotion_id: str) -> dict[str, Any] | None:
    row = db.conn.execute("SELECT * FROM promotions WHERE id = ?", (promotion_id,)).fetchone()
    return dict(row) if row else None


def _pending(db: StateDB, promotion_id: str) -> dict[str, Any]:
    promotion = _get(db, promotion_id)
    if promotion is None:
        raise ConfigError(
            f"no promotion {promotion_id!r}",
            next_action="promotion ids are in the JSON of `shiplane promote`",
        )
    if promotion["status"] != "pending":
        raise RefusedError(
            f"promotion {promotion_id} is {promotion['status']}, not pending", step="approval",
            next_action=f"shiplane promote {promotion['env']} to request a new one",
        )  # fmt: skip
    return promotion


def _decide(db: StateDB, promotion_id: str, status: str, actor: str | None) -> None:
    db.conn.execute(
        "UPDATE promotions SET status = ?, decided_by = COALESCE(?, decided_by),"
        " decided_at = COALESCE(decided_at, ?) WHERE id = ?",
        (status, actor, now(), promotion_id),
    )
