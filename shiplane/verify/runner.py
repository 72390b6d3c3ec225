"""Running the checks against a target, in file order (loading them: config.checks_file)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from shiplane.config.checks import Check

# Re-exported: where the checks were loaded before they had a module of their own.
from shiplane.config.checks_file import IMPLICIT_VERSION as IMPLICIT_VERSION
from shiplane.config.checks_file import load_checks as load_checks
from shiplane.errors import ConfigError
from shiplane.verify.database import run_schema, run_sql
from shiplane.verify.diff import run_diff
from shiplane.verify.http import run_http, run_version
from shiplane.verify.openapi import run_openapi
from shiplane.verify.suites import run_load, run_tests
from shiplane.verify.target import CheckFailed, CheckResult, Skipped, Target

RUNNERS: dict[str, Callable[[Any, Target], str]] = {
    "http": run_http,
    "version": run_version,
    "openapi": run_openapi,
    "sql": run_sql,
    "schema": run_schema,
    "diff": run_diff,
    "tests": run_tests,
    "load": run_load,
}


def checks_hash(checks: list[Check]) -> str:
    canonical = json.dumps(
        [c.model_dump(mode="json", by_alias=True) for c in checks], sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def select(checks: list[Check], only: str | None) -> list[Check]:
    if only is None:
        return checks
    chosen = [c for c in checks if only in (c.group, c.name)]
    if not chosen:
        groups = sorted({c.group for c in checks})
        raise ConfigError(
            f"--only {only!r} names no check or group (groups: {', '.join(groups)})",
            next_action="use a group or check name from [[verify.check]]",
        )
    return chosen


def run_checks(checks: list[Check], target: Target) -> list[CheckResult]:
    results = []
    for check in checks:
        started = time.monotonic()
        result = CheckResult(check.name, check.kind, check.group, "passed")
        try:
            result.message = RUNNERS[check.kind](check, target)
        except Skipped as exc:
            result.status, result.message = "skipped", str(exc)
        except CheckFailed as exc:
            result.status, result.message = "failed", target.redact(exc.message)
            result.detail = exc.detail
        except Exception as exc:  # a check must report, never crash the verification
            result.status = "failed"
            result.message = target.redact(f"{type(exc).__name__}: {exc}")
        result.duration_ms = int((time.monotonic() - started) * 1000)
        results.append(result)
    return results
