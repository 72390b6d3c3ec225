"""`shiplane verify ENV [--only GROUP]` and `shiplane report ID`."""

from __future__ import annotations

from typing import Any

from shiplane.errors import ChecksFailedError, ConfigError
from shiplane.operations import next_steps
from shiplane.operations.session import Session
from shiplane.operations.settings import settings_for
from shiplane.results import Result
from shiplane.verify import report
from shiplane.verify.runner import checks_hash, load_checks, run_checks, select
from shiplane.verify.target import make_target


def verify(session: Session, env: str, only: str | None) -> Result:
    loaded, db = session.loaded, session.db
    settings = settings_for(loaded, db, env)
    checks = load_checks(loaded)
    chosen = select(checks, only)
    state = db.env_state(env)
    if state is None or not state.get("sha"):
        raise ConfigError(
            f"nothing has been deployed to {env!r}: there is nothing to verify",
            step="verify",
            next_action=f"shiplane deploy {env}",
        )
    target = make_target(
        loaded,
        session.layout,
        settings,
        sha=state["sha"],
        phase="serving",
        release_dir=state["spec"].get("release_dir"),
        base_url=session.target.traffic(env, settings.env_config.port).url(),
    )
    results = run_checks(chosen, target)
    stored = report.record(
        db,
        env=env,
        sha=state["sha"],
        config_hash=checks_hash(checks),
        phase="serving",
        results=results,
        only=only,
    )
    result = Result(command="verify", env=env)
    result.data["verification"] = stored
    if not stored["passed"]:
        result.fail(checks_failed(stored, "verify", f"fix it, `shiplane deploy {env}`, verify"))
    elif only is None:
        result.data.update(
            next_steps.after_verify(loaded, db, session.layout.repo, env, state["sha"])
        )
    return result


def checks_failed(stored: dict[str, Any], step: str, fix: str) -> ChecksFailedError:
    failed = [r["name"] for r in stored["results"] if r["status"] == "failed"]
    return ChecksFailedError(
        f"{len(failed)} check(s) failed: {', '.join(failed) or 'none passed'}",
        step=step,
        next_action=f"read `shiplane report {stored['id']}`; {fix}",
        failed_checks=report.failed_checks(stored),
    )


def show_report(session: Session, verification_id: str) -> Result:
    stored = report.get(session.db, verification_id)
    if stored is None:
        raise ConfigError(
            f"no verification {verification_id!r}",
            next_action="verification ids are in the JSON of `shiplane verify` and `deploy`",
        )
    result = Result(command="report", env=stored["env"])
    result.data["verification"] = stored
    return result
