"""`shiplane verify ENV [--only GROUP]` and `shiplane report ID`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiplane.config.loader import env_settings
from shiplane.errors import ConfigError
from shiplane.operations.recover import recover_stale
from shiplane.operations.session import open_app
from shiplane.results import Result
from shiplane.verify import report
from shiplane.verify.runner import checks_hash, load_checks, run_checks, select
from shiplane.verify.target_for import frontdoor_url, make_target


def verify(env: str, only: str | None = None, config_path: Path | None = None) -> Result:
    with open_app(config_path, env) as (loaded, layout, db):
        recover_stale(loaded, layout, db)
        settings = env_settings(loaded, env)
        checks = load_checks(loaded)
        chosen = select(checks, only)
        state = db.env_state(env)
        if state is None or not state.get("sha"):
            raise ConfigError(
                f"nothing has been deployed to {env!r}: there is nothing to verify",
                step="verify", next_action=f"shiplane deploy {env}",
            )  # fmt: skip
        target = make_target(
            loaded, layout, settings, sha=state["sha"], phase="serving",
            release_dir=state["spec"].get("release_dir"), base_url=frontdoor_url(settings),
        )  # fmt: skip
        results = run_checks(chosen, target)
        stored = report.record(
            db, env=env, sha=state["sha"], config_hash=checks_hash(checks), phase="serving",
            results=results, only=only,
        )  # fmt: skip
        result = Result(command="verify", env=env)
        result.data["verification"] = stored
        if not stored["passed"]:
            fill_checks_failed(result, stored, "verify", f"fix it, `shiplane deploy {env}`, verify")
        return result


def fill_checks_failed(result: Result, stored: dict[str, Any], step: str, fix: str) -> None:
    failed = [r["name"] for r in stored["results"] if r["status"] == "failed"]
    result.ok = False
    result.exit_code = 1
    result.error = {
        "step": step,
        "message": f"{len(failed)} check(s) failed: {', '.join(failed) or 'none passed'}",
        "next_action": f"read `shiplane report {stored['id']}`; {fix}",
        "undone": [],
    }


def show_report(verification_id: str, config_path: Path | None = None) -> Result:
    with open_app(config_path) as (_loaded, _layout, db):
        stored = report.get(db, verification_id)
        if stored is None:
            raise ConfigError(
                f"no verification {verification_id!r}",
                next_action="verification ids are in the JSON of `shiplane verify` and `deploy`",
            )
        result = Result(command="report", env=stored["env"])
        result.data["verification"] = stored
        return result
