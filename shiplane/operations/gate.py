"""The promotion gate: only a commit with a fresh, passing verification in the source env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane import gitops
from shiplane.config.loader import LoadedConfig
from shiplane.errors import RefusedError
from shiplane.gate.pins import PinStore, check_hashes
from shiplane.state.db import StateDB
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
    passing = report.latest_passing(db, source, sha, config_hash)
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
            f"{sha[:7]} has no passing verification in {source}: {why}",
            step="gate",
            next_action=f"shiplane verify {source}",
        )
    max_age = loaded.config.verify.max_age
    if passing["age_s"] > max_age:
        raise RefusedError(
            f"the verification of {sha[:7]} in {source} ({passing['id']}) is "
            f"{passing['age_s']:.0f}s old; verify.max_age is {max_age:g}s",
            step="gate",
            next_action=f"shiplane verify {source}",
        )
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
        "verification_id": passing["id"],
        "verified_at": passing["created_at"],
        "verification_age_s": passing["age_s"],
        "checks": passing["summary"],
        "source_release_dir": source_release,
    }


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
