"""Waiting for an instance to become healthy: the schedule and the loop that the deploy's health
step (through its target), the schema rollback's restart and the server's restore all use.

The first check goes out at once, then the pause between checks doubles from ``FIRST_DELAY``
up to the configured interval: an app that is ready 10 ms after start is seen within a few
milliseconds, and a slow one is not hammered. In the server the wait also watches the process:
an instance that exits ends the wait at once, with its exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

# The first pause after a failed check; it doubles up to the policy's interval.
FIRST_DELAY = 0.01


@dataclass(frozen=True)
class HealthPolicy:
    interval: float = 1.0
    timeout: float = 30.0
    request_timeout: float = 5.0
    retries: int | None = None

    def pauses(self) -> Iterator[float]:
        """The pause after each failed check: 10 ms, 20 ms, 40 ms … capped at ``interval``."""
        pause = min(FIRST_DELAY, self.interval)
        while True:
            yield pause
            pause = min(pause * 2, self.interval)

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "interval": self.interval,
            "timeout": self.timeout,
            "request_timeout": self.request_timeout,
            "retries": self.retries,
        }


@dataclass(frozen=True)
class HealthOutcome:
    healthy: bool
    attempts: int
    last: str  # what the last probe saw: "HTTP 503", "ConnectError", "exited with code 1"
    seconds: float = 0.0
    exit_code: int | None = None  # set when the process exited during the wait
    output: str = ""  # the process's last output lines, when it exited

    def to_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "attempts": self.attempts,
            "last": self.last,
            "seconds": self.seconds,
            "exit_code": self.exit_code,
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> HealthOutcome:
        code = data.get("exit_code")
        return cls(
            healthy=bool(data["healthy"]),
            attempts=int(str(data["attempts"])),
            last=str(data["last"]),
            seconds=float(str(data.get("seconds") or 0.0)),
            exit_code=int(str(code)) if code is not None else None,
            output=str(data.get("output") or ""),
        )


def _gave_up(policy: HealthPolicy, attempts: int, pause: float, deadline: float) -> bool:
    if policy.retries is not None and attempts >= policy.retries:
        return True
    return time.monotonic() + pause > deadline


def wait_healthy(url: str, policy: HealthPolicy) -> HealthOutcome:
    """Probe ``url`` until it answers 2xx or the timeout or retries run out (no process to
    watch: the caller only has an address)."""
    started = time.monotonic()
    deadline = started + policy.timeout
    attempts = 0
    last = "no answer"
    pauses = policy.pauses()
    # Plain HTTP to the instance: verify=False only skips loading a CA bundle never used.
    with httpx.Client(timeout=policy.request_timeout, verify=False) as client:
        while True:
            attempts += 1
            try:
                response = client.get(url)
                if 200 <= response.status_code < 300:
                    elapsed = round(time.monotonic() - started, 3)
                    return HealthOutcome(True, attempts, f"HTTP {response.status_code}", elapsed)
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            pause = next(pauses)
            if _gave_up(policy, attempts, pause, deadline):
                return HealthOutcome(False, attempts, last, round(time.monotonic() - started, 3))
            time.sleep(pause)


async def probe_until_healthy(
    url: str, policy: HealthPolicy, exited: asyncio.Future[int] | None = None
) -> HealthOutcome:
    """The server's wait: like ``wait_healthy``, and ``exited`` (the process's exit status)
    resolving ends it at once, mid-probe or mid-pause."""
    started = time.monotonic()
    deadline = started + policy.timeout
    attempts = 0
    last = "no answer"
    pauses = policy.pauses()

    def gone() -> HealthOutcome | None:
        if exited is None or not exited.done():
            return None
        code = exited.result()
        elapsed = round(time.monotonic() - started, 3)
        return HealthOutcome(False, attempts, f"exited with code {code}", elapsed, code)

    async with httpx.AsyncClient(timeout=policy.request_timeout, verify=False) as client:
        while True:
            if (outcome := gone()) is not None:
                return outcome
            attempts += 1
            probe = asyncio.ensure_future(client.get(url))
            waits: set[asyncio.Future[Any]] = {probe}
            if exited is not None:
                waits.add(exited)
            # asyncio.wait never cancels what it waits for: the exit future stays intact.
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not probe.done():
                probe.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await probe
                continue  # the process exited: gone() says so
            try:
                response = probe.result()
                if 200 <= response.status_code < 300:
                    elapsed = round(time.monotonic() - started, 3)
                    return HealthOutcome(True, attempts, f"HTTP {response.status_code}", elapsed)
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            pause = next(pauses)
            if _gave_up(policy, attempts, pause, deadline):
                if (outcome := gone()) is not None:
                    return outcome
                return HealthOutcome(False, attempts, last, round(time.monotonic() - started, 3))
            if exited is None:
                await asyncio.sleep(pause)
            else:
                await asyncio.wait({exited}, timeout=pause)
