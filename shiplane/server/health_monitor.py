"""The server's own view of whether what serves is healthy: it probes every serving instance's
health route on an interval, and folds in what the supervisor knows (a crashed process, its
restarts). ``/_deploy/health``, ``status`` and the JSON report this, never a state assumed at
switch time: a version that passes its deploy health check and then crash-loops reads as
crashed here within one interval.

States: ``healthy``; ``restarting`` (it answers, but crashed less than ``STABLE_AFTER``
seconds ago: a crash loop is not health); ``unhealthy`` (``FAILURES_TO_UNHEALTHY`` probes in a
row failed, since the first of them); ``crashed`` (the process is gone, the supervisor
restarting it: ``restarts`` counts); ``stopped``; ``unknown`` until the first probe (the
endpoint then probes at once instead of guessing)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from shiplane.targets.processes import ManagedProcess

log = logging.getLogger("shiplane.server.health")

FAILURES_TO_UNHEALTHY = 2  # one lost probe on a busy host is not an outage
PROBE_TIMEOUT = 2.0
STABLE_AFTER = 30.0  # seconds without a crash before a restarted instance counts as healthy
TICK = 0.25  # how often the loop looks for an instance whose probe is due


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass
class InstanceHealth:
    state: str = "unknown"
    since: float = 0.0
    failures: int = 0
    last_error: str | None = None
    checked_at: float = 0.0
    restarts_seen: int = 0
    crashed_at: float = 0.0

    def moved_to(self, state: str, now: float) -> None:
        if state != self.state:
            self.state, self.since = state, now

    def to_dict(self, restarts: int) -> dict[str, Any]:
        return {
            "state": self.state,
            "healthy": self.state == "healthy",
            "since": _iso(self.since) if self.since else None,
            "failures": self.failures,
            "restarts": restarts,
            "checked_at": _iso(self.checked_at) if self.checked_at else None,
        }


class HealthMonitor:
    """Probes the instances ``serving()`` names, each on its spec's ``monitor_interval``."""

    def __init__(self, serving: Callable[[], Iterable[ManagedProcess]]) -> None:
        self._serving = serving
        self._health: dict[str, InstanceHealth] = {}
        self._client = httpx.AsyncClient(timeout=PROBE_TIMEOUT, follow_redirects=False)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    async def report(self, instance: ManagedProcess) -> dict[str, Any]:
        """The instance's health now; probed at once when it never was."""
        health = self._health.get(instance.id)
        if health is None or health.state == "unknown":
            health = await self.probe(instance)
        return health.to_dict(instance.restarts)

    def current(self, instance_id: str) -> InstanceHealth | None:
        """What the last probe of ``instance_id`` found (None: never probed), without probing."""
        return self._health.get(instance_id)

    async def probe(self, instance: ManagedProcess) -> InstanceHealth:
        health = self._health.setdefault(instance.id, InstanceHealth())
        now = time.time()
        health.checked_at = now
        if instance.restarts > health.restarts_seen:  # it died since the last look
            health.restarts_seen, health.crashed_at = instance.restarts, now
        if instance.state in ("crashed", "stopped"):
            health.moved_to(instance.state, now)
            health.last_error = f"process {instance.state} ({instance.restarts} restarts)"
            return health
        url = instance.as_instance().address.url(instance.spec.health)
        try:
            answer = await self._client.get(url)
            error = None if answer.status_code < 400 else f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if error is None:
            health.failures, health.last_error = 0, None
            looping = health.crashed_at and now - health.crashed_at < STABLE_AFTER
            health.moved_to("restarting" if looping else "healthy", now)
            return health
        health.failures += 1
        health.last_error = error
        if health.failures >= FAILURES_TO_UNHEALTHY or health.state == "unknown":
            if health.state != "unhealthy":
                log.warning("%s %s unhealthy: %s", instance.spec.env, instance.id, error)
            health.moved_to("unhealthy", now)
        return health

    async def _run(self) -> None:
        while True:
            serving = list(self._serving())
            ids = {i.id for i in serving}
            for gone in set(self._health) - ids:
                del self._health[gone]
            now = time.time()
            due = [
                i
                for i in serving
                if now - self._health.get(i.id, InstanceHealth()).checked_at
                >= i.spec.monitor_interval
            ]
            if due:
                await asyncio.gather(*(self.probe(i) for i in due), return_exceptions=True)
            await asyncio.sleep(TICK)
