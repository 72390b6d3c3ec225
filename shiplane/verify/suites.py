"""`tests` and `load` checks: the app's own suites, and concurrent requests against budgets."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from pathlib import Path

import httpx

from shiplane.config.checks import LoadCheck, TestsCheck
from shiplane.launch import launcher
from shiplane.launch.base import RunAs, run_captured
from shiplane.procenv import app_python_layer, child_environment
from shiplane.verify.http import writes_allowed
from shiplane.verify.target import CheckFailed, Skipped, Target, excerpt


def run_tests(check: TestsCheck, target: Target) -> str:
    if not writes_allowed(check.allow_in, target):
        raise Skipped(f"test suites may write; {target.env} is gated (add allow_in = [...])")
    if target.release_dir is None:
        raise Skipped("no release directory to run the suite in")
    env = child_environment(
        {
            "SHIPLANE_BASE_URL": target.base_url,
            "SHIPLANE_ENV": target.env,
            "SHIPLANE_SHA": target.sha,
        }
    )
    if target.database is not None:
        env["DATABASE_URL"] = target.database.url
    # The app's suite runs with the app's interpreter: its pytest, its pinned packages.
    python = target.config.app.python if target.config else None
    env.update(app_python_layer(python, target.release_dir, env))
    run_as = RunAs(target.config.app.name, target.env) if target.config else None
    try:
        proc = run_captured(
            launcher(),
            shlex.split(check.command),
            run_as=run_as,
            cwd=target.release_dir,
            env=env,
            timeout=check.timeout,
        )
    except OSError as exc:
        raise CheckFailed(f"{check.command!r} could not start: {exc.strerror or exc}") from exc
    if proc.timed_out:
        raise CheckFailed(f"{check.command!r} timed out after {check.timeout:g}s")
    output = target.redact(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise CheckFailed(
            f"{check.command!r} exited {proc.returncode}", {"output": excerpt(output[-2000:], 800)}
        )
    summary = output.strip().splitlines()[-1] if output.strip() else "passed"
    if check.coverage_min is not None:
        percent = _coverage(target.release_dir / check.coverage_file)
        if percent < check.coverage_min:
            raise CheckFailed(f"coverage {percent:.1f}% is below {check.coverage_min:g}%")
        summary += f"; coverage {percent:.1f}%"
    return summary


def _coverage(path: Path) -> float:
    try:
        return float(json.loads(path.read_text())["totals"]["percent_covered"])
    except (OSError, ValueError, KeyError) as exc:
        raise CheckFailed(f"coverage report {path.name} unreadable: {exc}") from exc


def run_load(check: LoadCheck, target: Target) -> str:
    latencies, errors = asyncio.run(_hammer(check, target.base_url + check.path))
    latencies.sort()
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)] if latencies else float("inf")
    rate = errors / check.requests
    detail = {"requests": check.requests, "errors": errors, "p95_ms": round(p95, 1)}
    if rate > check.max_error_rate:
        raise CheckFailed(f"error rate {rate:.1%} above {check.max_error_rate:.1%}", detail)
    if check.p95_ms is not None and p95 > check.p95_ms:
        raise CheckFailed(f"p95 {p95:.0f} ms above budget {check.p95_ms:g} ms", detail)
    return f"{check.requests} requests, p95 {p95:.0f} ms, {errors} error(s)"


async def _hammer(check: LoadCheck, url: str) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = iter(range(check.requests))

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in queue:
            started = time.monotonic()
            try:
                response = await http.get(url)
                if response.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.monotonic() - started) * 1000)

    limits = httpx.Limits(max_connections=check.concurrency)
    async with httpx.AsyncClient(timeout=30, verify=False, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(check.concurrency)))
    return latencies, errors
