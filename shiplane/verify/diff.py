"""`diff` check: the same requests to what serves now and to the candidate; every change of
status code or JSON shape not declared in ``expect_changed`` fails."""

from __future__ import annotations

from typing import Any

import httpx

from shiplane.config.checks import DiffCheck
from shiplane.verify.http import client
from shiplane.verify.target import CheckFailed, Skipped, Target


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not the data."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        # Lists are compared by the shape of their first item: lengths are data.
        return [shape(value[0])] if value else []
    return type(value).__name__


def _fetch(http: httpx.Client, url: str) -> tuple[int, Any]:
    response = http.get(url)
    try:
        return response.status_code, shape(response.json())
    except ValueError:
        return response.status_code, "text"


def run_diff(check: DiffCheck, target: Target) -> str:
    if target.current_url is None or target.current_url == target.base_url:
        raise Skipped(
            target.current_missing or "no candidate next to a serving version (runs during deploy)"
        )
    differences = []
    with client() as http:
        for path in check.paths:
            try:
                old = _fetch(http, target.current_url + path)
                new = _fetch(http, target.base_url + path)
            except httpx.HTTPError as exc:
                raise CheckFailed(f"{path}: {type(exc).__name__}") from exc
            if old == new:
                continue
            change: dict[str, Any] = {"path": path, "status": [old[0], new[0]]}
            if old[1] != new[1]:
                change["shape"] = {"current": old[1], "candidate": new[1]}
            change["expected"] = path in check.expect_changed
            differences.append(change)
    unexpected = [d for d in differences if not d["expected"]]
    if unexpected:
        raise CheckFailed(
            f"{len(unexpected)} unexpected difference(s): "
            + ", ".join(str(d["path"]) for d in unexpected),
            {"differences": differences},
        )
    return f"{len(check.paths)} path(s), {len(differences)} expected difference(s)"
