"""`http` and `version` checks: real requests, asserted on status, JSON, text and latency."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from jsonpath_ng.ext.parser import parse as jsonpath

from shiplane.config.checks import HttpCheck, VersionCheck
from shiplane.verify.target import CheckFailed, Skipped, Target, excerpt
from shiplane.verify.values import fill, for_check


def client() -> httpx.Client:
    # Plain HTTP to loopback: no CA bundle needed.
    return httpx.Client(timeout=30, verify=False, follow_redirects=False)


def is_subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) <= len(actual)
            and all(is_subset(e, a) for e, a in zip(expected, actual, strict=False))
        )
    return bool(expected == actual)


def jsonpath_values(document: Any, path: str) -> list[Any]:
    try:
        return [match.value for match in jsonpath(path).find(document)]
    except Exception as exc:  # jsonpath-ng raises plain Exceptions for bad syntax
        raise CheckFailed(f"bad JSONPath {path!r}: {exc}") from exc


def run_http(check: HttpCheck, target: Target) -> str:
    if check.writes and not writes_allowed(check.allow_in, target):
        raise Skipped(f"{check.method} writes; {target.env} is gated (add allow_in = [...])")
    given = for_check(target.captures)
    path = fill(check.path, given)
    headers = fill(check.headers, given)
    if "${" in path:
        raise Skipped(f"{path}: its capture comes from a check that did not run")
    last: CheckFailed | None = None
    for _attempt in range(check.retries + 1):
        try:
            return _attempt_http(check, target, path, headers, given)
        except CheckFailed as exc:
            last = exc
            time.sleep(0.2)
    assert last is not None
    raise last


def _attempt_http(
    check: HttpCheck, target: Target, path: str, headers: dict[str, str], given: dict[str, Any]
) -> str:
    kwargs: dict[str, Any] = {"headers": {**target.headers, **headers}}
    if check.json_body is not None:
        kwargs["json"] = fill(check.json_body, given)
    elif check.body is not None:
        kwargs["content"] = fill(check.body, given)
    started = time.monotonic()
    try:
        with client() as http:
            response = http.request(check.method.upper(), target.base_url + path, **kwargs)
    except httpx.HTTPError as exc:
        raise CheckFailed(f"{check.method} {path}: {type(exc).__name__}: {exc}") from exc
    latency = (time.monotonic() - started) * 1000
    text = response.text
    detail = {
        "request": f"{check.method.upper()} {path}",
        "status": response.status_code,
        "response": excerpt(target.redact(text)),
        "latency_ms": round(latency, 1),
    }
    if response.status_code != check.status:
        raise CheckFailed(f"status {response.status_code}, expected {check.status}", detail)
    # The same values as the request: a check can expect back the ${uuid} it sent.
    for needle in fill(check.contains, given):
        if needle not in text:
            raise CheckFailed(f"response does not contain {needle!r}", detail)
    for needle in check.not_contains:
        if needle in text:
            raise CheckFailed(f"response contains {needle!r}, which must not appear", detail)
    document: Any = None
    if check.expect_json is not None or check.jsonpath or check.capture:
        try:
            document = response.json()
        except json.JSONDecodeError as exc:
            raise CheckFailed("response is not JSON", detail) from exc
    expect_json = fill(check.expect_json, given)
    if expect_json is not None and not is_subset(expect_json, document):
        raise CheckFailed(f"JSON does not contain {json.dumps(expect_json)}", detail)
    for path_expr, expected in fill(check.jsonpath, given).items():
        values = jsonpath_values(document, path_expr)
        if not values:
            raise CheckFailed(f"JSONPath {path_expr} matched nothing", detail)
        if expected != "*" and values[0] != expected:
            raise CheckFailed(
                f"JSONPath {path_expr} = {values[0]!r}, expected {expected!r}", detail
            )
    for name, path_expr in check.capture.items():
        values = jsonpath_values(document, path_expr)
        if not values:
            raise CheckFailed(f"capture {name}: JSONPath {path_expr} matched nothing", detail)
        target.captures[name] = values[0]
    if check.max_latency_ms is not None and latency > check.max_latency_ms:
        raise CheckFailed(f"took {latency:.0f} ms, budget {check.max_latency_ms:g} ms", detail)
    return f"{response.status_code} in {latency:.0f} ms"


def writes_allowed(allow_in: list[str] | None, target: Target) -> bool:
    return target.env in allow_in if allow_in is not None else not target.gated


def run_version(_check: VersionCheck, target: Target) -> str:
    if target.phase != "serving":
        raise Skipped("runs through the front door after the switch")
    try:
        with client() as http:
            data = http.get(f"{target.base_url}/_deploy/version").json()
    except (httpx.HTTPError, ValueError) as exc:
        raise CheckFailed(f"/_deploy/version did not answer: {exc}") from exc
    if data.get("sha") != target.sha:
        raise CheckFailed(
            f"/_deploy/version reports {data.get('sha')!r}, expected {target.sha}", {"got": data}
        )
    return f"serves {target.sha[:7]}"
