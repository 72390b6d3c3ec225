"""The promotion gate: only a commit with a fresh, passing verification in the source env."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from shiplane import gitops
from shiplane.config.loader import LoadedConfig
from shiplane.errors import RefusedError
from shiplane.gate.pins import PinStore, check_hashes
from shiplane.state.db import StateDB
from shiplane.state.watches import WatchStore
from shiplane.verify import report
from shiplane.verify.runner import checks_hash, load_checks


def evidence_for(
    loaded: LoadedConfig,
    db: StateDB,
    repo: Path,
    env: str,
    source: str,
    sha: str | None = None,
) -> dict[str, Any]:
    """The verification that lets ``sha`` (default: what serves in ``source``) into ``env``;
    raises RefusedError (exit 6) naming the reason and the next action. ``repo`` is the
    server's repository, where the env branches live."""
    state = db.env_state(source)
    if sha is None:
        if state is None or not state.get("sha"):
            raise RefusedError(
                f"nothing serves in {source}, so there is nothing to promote to {env}",
                step="gate",
                next_action=f"shiplane deploy {source} && shiplane verify {source}",
            )
        sha = str(state["sha"])
    config_hash = checks_hash(load_checks(loaded))
    max_age = loaded.config.verify.max_age
    passing = report.latest_passing(db, source, sha, config_hash)
    deployed = _deployed(loaded, db, source, sha)
    # The newer of the two counts: a `shiplane verify`, or the deploy's own checks.
    newer = passing is None or passing["age_s"] > max_age
    if not newer and deployed is not None and passing is not None:
        newer = deployed["age_s"] < passing["age_s"]
    if deployed is not None and deployed["counts"] and newer:
        return _evidence(loaded, db, repo, env, source, sha, state, deployed)
    # Why the deploy itself does not count, when there is one: said with the refusal.
    besides = ""
    if deployed is not None:
        besides = f"; its deploy {deployed['deployment_id']} does not count: {deployed['missing']}"
    if passing is None:
        latest = report.latest(db, source, sha)
        if latest is None:
            why = "it has never been verified"
        elif latest["passed"] and latest["config_hash"] != config_hash:
            why = f"the checks changed since verification {latest['id']}"
        elif latest["passed"]:
            why = f"verification {latest['id']} ran only --only {latest['only_group']}"
        else:
            why = f"its latest verification {latest['id']} failed"
        raise RefusedError(
            f"{sha[:7]} has no passing verification in {source}: {why}{besides}",
            step="gate",
            next_action=f"shiplane verify {source}",
        )
    if passing["age_s"] > max_age:
        raise RefusedError(
            f"the verification of {sha[:7]} in {source} ({passing['id']}) is "
            f"{passing['age_s']:.0f}s old; verify.max_age is {max_age:g}s{besides}",
            step="gate",
            next_action=f"shiplane verify {source}",
        )
    found = {
        "kind": "verify",
        "verification_id": passing["id"],
        "verified_at": passing["created_at"],
        "verification_age_s": passing["age_s"],
        "checks": passing["summary"],
    }
    return _evidence(loaded, db, repo, env, source, sha, state, found)


def _evidence(
    loaded: LoadedConfig,
    db: StateDB,
    repo: Path,
    env: str,
    source: str,
    sha: str,
    state: dict[str, Any] | None,
    found: dict[str, Any],
) -> dict[str, Any]:
    """The evidence ``found`` for ``sha``, once ``env``'s branch is known not to diverge."""
    branch = loaded.config.environments[env].branch
    before = gitops.branch_sha(repo, branch) if (repo / "HEAD").is_file() else None
    if before is not None and before != sha and not gitops.is_ancestor(repo, before, sha):
        raise RefusedError(
            f"{branch} has diverged from {sha[:7]} (it has commits the verified commit lacks)",
            step="gate",
            next_action=f"merge {branch} into {source}'s branch, deploy {source}, verify, promote",
        )
    source_release = state["spec"].get("release_dir") if state and state["sha"] == sha else None
    return {
        "sha": sha,
        "source": source,
        "kind": found["kind"],
        "verification_id": found["verification_id"],
        "verified_at": found["verified_at"],
        "verification_age_s": found["verification_age_s"],
        "checks": found["checks"],
        "deployment_id": found.get("deployment_id"),
        "source_release_dir": source_release,
    }


def _deployed(loaded: LoadedConfig, db: StateDB, env: str, sha: str) -> dict[str, Any] | None:
    """``deploy_evidence`` of the newest deploy of ``sha`` into ``env``, if any."""
    row = db.conn.execute(
        "SELECT id FROM deployments WHERE env = ? AND sha = ? AND kind IN ('deploy', 'promote')"
        " AND status NOT IN ('running', 'refused') ORDER BY started_at DESC LIMIT 1",
        (env, sha),
    ).fetchone()
    return deploy_evidence(loaded, db, env, str(row["id"])) if row else None


def deploy_evidence(
    loaded: LoadedConfig, db: StateDB, env: str, deployment_id: str
) -> dict[str, Any]:
    """Whether deployment ``deployment_id`` counts as verification evidence for promoting its
    commit out of ``env``: the full check suite passed on the candidate (the checks the config
    has now), the smoke passed after the switch, within ``verify.max_age``, and its watch
    ended clean. ``missing`` says what does not hold."""
    deployment = db.deployment(deployment_id) or {}
    runs = report.of_deployment(db, deployment_id)
    candidate = next((r for r in runs if r["phase"] == "candidate"), None)
    smoke = next((r for r in runs if r["phase"] == "smoke"), None)
    watch = WatchStore(db).get(deployment_id)
    found: dict[str, Any] = {
        "counts": False,
        "missing": None,
        "kind": "deploy",
        "deployment_id": deployment_id,
        "verification_id": candidate["id"] if candidate else None,
        "smoke_verification_id": smoke["id"] if smoke else None,
        "verified_at": candidate["created_at"] if candidate else None,
        "verification_age_s": candidate["age_s"] if candidate else None,
        "age_s": candidate["age_s"] if candidate else None,
        "checks": candidate["summary"] if candidate else None,
        "watch": watch["state"] if watch else "none",
    }
    found["missing"] = _missing(loaded, deployment, candidate, smoke, watch)
    found["counts"] = found["missing"] is None
    found["next_action"] = _next_action(loaded, env, found, watch)
    return found


def _next_action(
    loaded: LoadedConfig, env: str, found: dict[str, Any], watch: dict[str, Any] | None
) -> str | None:
    """The command that takes the commit further, once it may: None where no environment
    is promoted from ``env``."""
    further = [n for n, e in loaded.config.environments.items() if e.promote_from == env]
    if not further:
        return None
    promote = f"shiplane promote {further[0]}"
    if found["counts"]:
        return promote
    if watch is not None and watch["state"] == "running":
        return (
            f"wait until {watch['ends_at']} (shiplane status {env} shows the watch), then {promote}"
        )
    return f"shiplane verify {env} && {promote}"


def _missing(
    loaded: LoadedConfig,
    deployment: dict[str, Any],
    candidate: dict[str, Any] | None,
    smoke: dict[str, Any] | None,
    watch: dict[str, Any] | None,
) -> str | None:
    if deployment.get("status") != "succeeded":
        return f"the deploy did not succeed ({deployment.get('status')})"
    if candidate is None or not candidate["passed"]:
        return "the check suite did not pass on the candidate"
    if candidate["only_group"]:
        return f"only --only {candidate['only_group']} ran"
    if candidate["config_hash"] != checks_hash(load_checks(loaded)):
        return "the checks changed since the deploy ran them"
    if smoke is None or not smoke["passed"]:
        return "the smoke checks did not pass after the switch"
    max_age = loaded.config.verify.max_age
    if candidate["age_s"] > max_age:
        return f"its checks ran {candidate['age_s']:.0f}s ago; verify.max_age is {max_age:g}s"
    if watch is None:
        if loaded.config.deploy.watch > 0:
            return "it had no watch after its switch"
        return None  # deploy.watch = 0: nothing to wait for
    planned = _watch_seconds(watch)
    if planned is not None and planned + 1 < loaded.config.deploy.watch:
        return f"its watch lasted {planned:.0f}s; deploy.watch is {loaded.config.deploy.watch:g}s"
    if watch["state"] == "running":
        return f"watch running until {watch['ends_at']}"
    if watch["state"] != "clean":
        return f"its watch ended {watch['state']}" + (
            f": {watch['reason']}" if watch["reason"] else ""
        )
    return None


def _watch_seconds(watch: dict[str, Any]) -> float | None:
    """How long the watch was set to last (None: its times cannot be read)."""
    try:
        started = datetime.fromisoformat(str(watch["started_at"]))
        ends = datetime.fromisoformat(str(watch["ends_at"]))
    except (KeyError, ValueError):
        return None
    return (ends - started).total_seconds()


def pinned_checks_hold(loaded: LoadedConfig, db: StateDB, env: str) -> None:
    """The gate counts only evidence from the pinned checks: the evidence was gathered with
    the config's checks, so each pinned check must be there with its pinned definition (an
    edited check is refused here, not silently counted; a removed one never gets this far)."""
    pin = PinStore(db).get(env)
    if pin is None:
        return
    current = check_hashes(loaded)
    differ = sorted(
        name for name, digest in (pin.settings.get("checks") or {}).items()
        if current.get(name) != digest
    )  # fmt: skip
    if differ:
        raise RefusedError(
            f"check(s) {', '.join(differ)} differ from the definition pinned for {env}: the "
            "gate counts only evidence from the pinned checks",
            step="gate",
            next_action=f"restore the check(s) in shiplane.toml and verify again, or a person "
            f"confirms the new ones: shiplane protect {env} --passphrase",
        )
