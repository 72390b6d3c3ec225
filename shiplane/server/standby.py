"""Warm standby: the instance a switch took traffic from, kept running but unrouted.

A rollback to the previous release is then a front-door switch: no start, no health wait. One
standby per environment at most (a newer one replaces it, and the older is stopped); each is
stopped when its ``ttl`` runs out, and with the server. The health monitor probes standbys like
serving instances, and one that crashed or fails its probes is never handed out: it is stopped,
and the rollback starts a fresh instance as it always did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shiplane.targets.processes import ManagedProcess

log = logging.getLogger("shiplane.server")

# What may differ between the standby's spec and the one a rollback would start: nothing
# the instance sees (the log file of one release is one file either way).
IGNORED = frozenset({"version"})


@dataclass
class Standby:
    instance: ManagedProcess
    expires_at: float  # epoch seconds
    restarts: int  # the supervisor's count when it became standby: one more is a crash
    timer: asyncio.TimerHandle | None = None

    def describe(self, health: dict[str, Any] | None) -> dict[str, Any]:
        process = self.instance.process
        return {
            "instance_id": self.instance.id,
            "release": self.instance.spec.release,
            "sha": self.instance.spec.sha,
            "pid": process.pid if process else None,
            "expires_at": datetime.fromtimestamp(self.expires_at, UTC).isoformat(
                timespec="seconds"
            ),
            "expires_in_s": max(0.0, round(self.expires_at - time.time(), 1)),
            "health": health,
        }


class Standbys:
    """Per environment key, the standby instance; ``stop`` ends an instance for good."""

    def __init__(
        self,
        stop: Callable[[str], Coroutine[Any, Any, bool]],
        probe: Callable[[ManagedProcess], Awaitable[str]],
        settle: Callable[[Any], Awaitable[Any]],
    ) -> None:
        self._stop = stop
        self._probe = probe  # the health monitor's probe: its state name
        self._settle = settle  # waits for the env's drains still running
        self._kept: dict[Any, Standby] = {}
        self._tasks: set[asyncio.Task[bool]] = set()

    def get(self, key: Any) -> Standby | None:
        return self._kept.get(key)

    def instances(self) -> list[ManagedProcess]:
        return [s.instance for s in self._kept.values()]

    def ids(self) -> set[str]:
        return {s.instance.id for s in self._kept.values()}

    def keep(self, key: Any, instance: ManagedProcess, ttl: float) -> None:
        """``instance`` becomes ``key``'s standby for ``ttl`` seconds; the one it replaces
        stops (an env runs its serving instance and one standby, no more)."""
        previous = self._kept.get(key)
        if previous is not None and previous.instance.id != instance.id:
            self._drop(key)
            self._stop_later(
                previous.instance.id,
                f"{key}: standby {previous.instance.id} replaced by {instance.id}",
            )
        elif previous is not None and previous.timer is not None:
            previous.timer.cancel()
        loop = asyncio.get_running_loop()
        standby = Standby(instance, time.time() + ttl, instance.restarts)
        standby.timer = loop.call_later(ttl, self._expire, key, instance.id)
        self._kept[key] = standby
        log.info("%s: %s (%s) on standby for %gs", key, instance.id, instance.spec.release, ttl)

    async def claim(
        self, key: Any, spec: dict[str, Any]
    ) -> tuple[ManagedProcess | None, str | None]:
        """``key``'s standby when it can serve ``spec`` now (healthy by a probe made here),
        taken off standby; else None and why. One of ``spec``'s release that cannot is
        stopped: a fresh instance of that release starts instead."""
        # A drain still running ends in the standby: wait for it (bounded by its timeouts).
        await self._settle(key)
        standby = self._kept.get(key)
        if standby is None:
            return None, "no standby instance"
        why = self.usable(standby, await self._probe(standby.instance), spec)
        if why is None:
            self._drop(key)
            return standby.instance, None
        if standby.instance.spec.release == spec.get("release"):
            log.warning("%s: standby %s not used: %s", key, standby.instance.id, why)
            self._drop(key)
            await self._stop(standby.instance.id)
        return None, why

    def keep_again(self, key: Any, instance: ManagedProcess, ttl: float) -> bool:
        """A claimed instance back on standby (its rollback was undone), when it still runs."""
        if instance.state != "running" or ttl <= 0:
            return False
        self.keep(key, instance, ttl)
        return True

    def forget(self, instance_id: str) -> None:
        """``instance_id`` is being stopped by someone else: it is no standby any more."""
        for key, standby in list(self._kept.items()):
            if standby.instance.id == instance_id:
                self._drop(key)

    def usable(self, standby: Standby, health: str, spec: dict[str, Any]) -> str | None:
        """Why ``standby`` cannot serve a rollback to ``spec`` (None: it can)."""
        instance = standby.instance
        if instance.spec.release != spec.get("release"):
            return f"the standby runs {instance.spec.release}, not {spec.get('release')}"
        mine = instance.spec.model_copy(update={"app": spec.get("app", instance.spec.app)})
        differ = sorted(
            k for k, v in mine.to_stored().items() if k not in IGNORED and spec.get(k) != v
        )
        if differ:
            return f"its settings differ from the release's now ({', '.join(differ)})"
        process = instance.process
        if process is None or process.returncode is not None or instance.state != "running":
            return f"its process is {instance.state}"
        if instance.restarts > standby.restarts:
            return f"it crashed while on standby ({instance.restarts - standby.restarts} restarts)"
        if health != "healthy":
            return f"its health is {health}"
        return None

    async def close(self) -> None:
        for key in list(self._kept):
            self._drop(key)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _drop(self, key: Any) -> Standby | None:
        standby = self._kept.pop(key, None)
        if standby is not None and standby.timer is not None:
            standby.timer.cancel()
        return standby

    def _expire(self, key: Any, instance_id: str) -> None:
        standby = self._kept.get(key)
        if standby is None or standby.instance.id != instance_id:
            return
        self._drop(key)
        self._stop_later(instance_id, f"{key}: standby {instance_id} expired")

    def _stop_later(self, instance_id: str, why: str) -> None:
        log.info("%s; stopping it", why)
        task: asyncio.Task[bool] = asyncio.create_task(self._stop(instance_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
