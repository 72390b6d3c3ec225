"""Verification reports: stored in state.db against (environment, sha, checks hash)."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

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
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    verification_id = f"v-{env}-{stamp}-{secrets.token_hex(2)}"
    # Before the switch, an app without checks has nothing that can run (the version check needs
    # the front door): that is not a failure. Through the front door the version check always
    # runs, so a serving verification that passes has passed at least that.
    passed = all(r.status != "failed" for r in results) and (
        phase == "candidate" or any(r.status == "passed" for r in results)
    )
    db.conn.execute(
        "INSERT INTO verifications (id, env, sha, config_hash, phase, only_group, passed,"
        " deployment_id, created_at, created_epoch, results) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (verification_id, env, sha, config_hash, phase, only, int(passed), deployment_id, now(),
         time.time(), json.dumps([r.to_dict() for r in results])),
    )  # fmt: skip
    stored = get(db, verification_id)
    assert stored is not None
    return stored


def get(db: StateDB, verification_id: str) -> dict[str, Any] | None:
    row = db.conn.execute("SELECT * FROM verifications WHERE id = ?", (verification_id,)).fetchone()
    return _as_dict(row) if row else None


def latest_passing(db: StateDB, env: str, sha: str, config_hash: str) -> dict[str, Any] | None:
    """The newest passing `shiplane verify` (all checks, through the front door) of this sha
    with these checks; the deploy's own candidate and smoke runs do not count."""
    row = db.conn.execute(
        "SELECT * FROM verifications WHERE env = ? AND sha = ? AND config_hash = ? AND passed = 1"
        " AND only_group IS NULL AND phase = 'serving' ORDER BY created_epoch DESC LIMIT 1",
        (env, sha, config_hash),
    ).fetchone()
    return _as_dict(row) if row else None


def latest(db: StateDB, env: str, sha: str) -> dict[str, Any] | None:
    """The newest `shiplane verify` of this sha, passing or not."""
    row = db.conn.execute(
        "SELECT * FROM verifications WHERE env = ? AND sha = ? AND phase = 'serving'"
        " ORDER BY created_epoch DESC LIMIT 1",
        (env, sha),
    ).fetchone()
    return _as_dict(row) if row else None


def _as_dict(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["passed"] = bool(data["passed"])
    data["results"] = json.loads(data["results"])
    data["age_s"] = round(time.time() - data.pop("created_epoch"), 1)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for result in data["results"]:
        counts[result["status"]] += 1
    data["summary"] = counts
    return data
