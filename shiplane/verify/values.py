"""Values a check's path, headers and body can use: ``${name}`` captured by an earlier check,
and ``${uuid}``, ``${random}``, ``${timestamp}`` made fresh for each run of a check, so a check
that creates something unique (a user, an email) passes on its second run too."""

from __future__ import annotations

import secrets
import time
import uuid
from string import Template
from typing import Any

GENERATED = ("uuid", "random", "timestamp")


def fresh() -> dict[str, str]:
    """One set of generated values: a check that uses ``${uuid}`` in its path and its body
    gets the same one in both."""
    return {
        "uuid": str(uuid.uuid4()),
        "random": str(secrets.randbelow(10**9)),
        "timestamp": str(int(time.time())),
    }


def fill(value: Any, values: dict[str, Any]) -> Any:
    """``${name}`` in strings (also nested in JSON bodies) becomes ``values[name]``; an unknown
    name stays as written (the caller decides what that means)."""
    if isinstance(value, str):
        return Template(value).safe_substitute({k: str(v) for k, v in values.items()})
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    return value


def for_check(captures: dict[str, Any]) -> dict[str, Any]:
    """What one run of a check substitutes: fresh generated values, then the captures (a
    capture a check names explicitly wins over a generated value of the same name)."""
    return {**fresh(), **captures}
