"""What comes after a successful deploy or verify of an environment that others promote from:
the exact command that continues toward them, and, for a deploy, whether it already counts as
promotion evidence and what is missing if not. Without it an agent read "verify: 10 passed" in
a deploy's JSON, ran `promote` and was refused ("never been verified")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.config.loader import LoadedConfig
from shiplane.gitops import rolled_back as history
from shiplane.pipeline.rolled_back import FLAG
from shiplane.state.db import StateDB
from shiplane.state.rolled_back import RolledBackStore
from shiplane.verify import report
from shiplane.verify.runner import checks_hash, load_checks


def downstream(loaded: LoadedConfig, env: str) -> list[str]:
    """The environments that take their code from ``env`` by promotion."""
    return [
        name
        for name, environment in loaded.config.environments.items()
        if environment.promote_from == env
    ]


def _promotions(loaded: LoadedConfig, db: StateDB, env: str, sha: str) -> list[str]:
    """`shiplane promote X` for each downstream X that does not serve ``sha`` yet."""
    return [
        f"shiplane promote {target}"
        for target in downstream(loaded, env)
        if (db.env_state(target) or {}).get("sha") != sha
    ]


def after_deploy(
    loaded: LoadedConfig,
    db: StateDB,
    env: str,
    sha: str,
    deploy_evidence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Keys for a successful deploy's JSON (none when nothing promotes from ``env``).
    ``deploy_evidence`` is the deploy's own (``shiplane.operations.gate.deploy_evidence``):
    it counts once its watch ended clean; until then a `verify` is the road that works now."""
    promotions = _promotions(loaded, db, env, sha)
    if not promotions:
        return {}
    passing = report.latest_passing(db, env, sha, checks_hash(load_checks(loaded)))
    if passing is not None:
        return {
            "promotion_evidence": {"counts": True, "verification_id": passing["id"]},
            "next_action": promotions[0],
            "next_actions": promotions,
        }
    if deploy_evidence is not None and deploy_evidence.get("counts"):
        return {
            "promotion_evidence": {
                "counts": True,
                "deployment_id": deploy_evidence["deployment_id"],
                "verification_id": deploy_evidence["verification_id"],
            },
            "next_action": promotions[0],
            "next_actions": promotions,
        }
    missing = (deploy_evidence or {}).get("missing") or "the deploy's own checks do not count"
    return {
        "promotion_evidence": {
            "counts": False,
            "missing": f"{missing}; a passing `shiplane verify {env}` of {sha[:7]} counts now",
        },
        "next_action": f"shiplane verify {env}",
        "next_actions": [f"shiplane verify {env}"],
    }


def after_verify(
    loaded: LoadedConfig, db: StateDB, repo: Path, env: str, sha: str
) -> dict[str, Any]:
    """Keys for a passing verification's JSON: the promotions it opened. One that would bring
    back commits rolled back from its target is refused without ``--include-rolled-back``
    (``shiplane.pipeline.rolled_back``): the command says so, and ``brings_back`` what."""
    promotions = _promotions(loaded, db, env, sha)
    if not promotions:
        return {}
    back: dict[str, list[str]] = {}
    for command in list(promotions):
        target = command.rsplit(" ", 1)[1]
        active = [r.sha for r in RolledBackStore(db).active(target)]
        found = history.brought_back(repo, active, [sha]) if active else []
        if found:
            back[target] = found
            promotions[promotions.index(command)] = f"{command} {FLAG}"
    keys: dict[str, Any] = {"next_action": promotions[0], "next_actions": promotions}
    if back:
        keys["brings_back"] = back
        keys["note"] = (
            "promoting brings back commits rolled back from "
            + "; ".join(
                f"{target}: {', '.join(s[:12] for s in shas)}" for target, shas in back.items()
            )
            + " (to leave them out: git revert them, deploy, verify)"
        )
    return keys
