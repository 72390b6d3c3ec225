"""Loading the checks and running them against a target, in file order."""

from __future__ import annotations

import hashlib
import json
import time
import tomllib
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from shiplane.config.checks import Check, ChecksFile, VersionCheck
from shiplane.config.loader import (
    CHECKS_KEY,
    LoadedConfig,
    describe_validation_error,
    load_toml,
    read_limited,
)
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
IMPLICIT_VERSION = VersionCheck(kind="version", name="version", group="smoke")


def load_checks(loaded: LoadedConfig) -> list[Check]:
    """Inline [[verify.check]] tables, then the checks file; names must be unique."""
    verify = loaded.config.verify
    checks: list[Check] = list(verify.check)
    if verify.checks_file:
        # Messages name the user's file, also when the server parses the copy a client sent.
        path = loaded.display.parent / verify.checks_file
        try:
            if loaded.sent is not None:
                text = loaded.sent_text(CHECKS_KEY, "verify.checks_file", verify.checks_file)
            else:
                text = read_limited(path)
            raw = load_toml(text, path)
            checks += ChecksFile.model_validate(raw).check
        except OSError as exc:
            raise ConfigError(
                f"verify.checks_file = {verify.checks_file!r}: cannot read it ({exc.strerror})",
                next_action=f"create {path} or remove verify.checks_file",
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})", next_action=f"fix {path}") from exc
        except ValidationError as exc:
            raise ConfigError(
                f"{path}: {describe_validation_error(exc)}", next_action=f"fix {path}"
            ) from None
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"check name(s) used twice: {', '.join(duplicates)}",
            next_action="give every [[verify.check]] its own name",
        )
    if not any(c.kind == "version" for c in checks):
        checks.append(IMPLICIT_VERSION)
    return checks


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
