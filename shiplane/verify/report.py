"""Verification reports: stored in state.db against (environment, sha, checks hash)."""

from __future__ import annotations

import time
from typing import Any

from shiplane.ids import new_id
from shiplane.state.db import StateDB, now
from shiplane.verify.target import CheckResult


def record(
    db: StateDB,
    *,
    env: str,
    sha: str,
    config_hash: str,
    phase: str,
    results: list[CheckResult],
    only: str | None = None,
    deployment_id: str | None = None,
) -> dict[str, Any]:
    verification_id = new_id(env, prefix="v-")
    # Before the switch, an app without checks has nothing that can run (the version check needs
    # the front door): that is not a failure. Through the front door the version check always
    # runs, so a serving verification that passes has passed at least that.
    passed = all(r.status != "failed" for r in results) and (
        phase == "candidate" or any(r.status == "passed" for r in results)
    )
    db.add_verification(
        id=verification_id,
        env=env,
        sha=sha,
        config_hash=config_hash,
        phase=phase,
        only_group=only,
        passed=passed,
        deployment_id=deployment_id,
        created_at=now(),
        created_epoch=time.time(),
        results=[r.to_dict() for r in results],
    )
    stored = get(db, verification_id)
    assert stored is not None
    return stored


def get(db: StateDB, verification_id: str) -> dict[str, Any] | None:
    return _summarised(db.verification(verification_id))


def latest_passing(db: StateDB, env: str, sha: str, config_hash: str) -> dict[str, Any] | None:
    """The newest passing `shiplane verify` (all checks, through the front door) of this sha
    with these checks; the deploy's own candidate and smoke runs do not count."""
    return _summarised(db.latest_verification(env, sha, passing_with=config_hash))


def of_deployment(db: StateDB, deployment_id: str) -> list[dict[str, Any]]:
    """The runs a deployment recorded (candidate, smoke), newest first."""
    rows = db.conn.execute(
        "SELECT id FROM verifications WHERE deployment_id = ? ORDER BY created_epoch DESC",
        (deployment_id,),
    ).fetchall()
    found = [get(db, str(row["id"])) for row in rows]
    return [run for run in found if run is not None]


def latest(db: StateDB, env: str, sha: str) -> dict[str, Any] | None:
    """The newest `shiplane verify` of this sha, passing or not."""
    return _summarised(db.latest_verification(env, sha))


def _summarised(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for result in data["results"]:
        counts[result["status"]] += 1
    data["summary"] = counts
    return data


def failed_checks(stored: dict[str, Any]) -> list[dict[str, str]]:
    """Each failed check of a stored verification: name, group and the (redacted) reason, as
    a deploy's or verify's error JSON lists them."""
    return [
        {"name": r["name"], "group": r["group"], "message": r["message"]}
        for r in stored["results"]
        if r["status"] == "failed"
    ]
