"""The watch after a switch: for ``watch`` seconds the server keeps an eye on the new instance
and, when it goes bad, rolls back on its own through the ``rollback`` operation (the same
path as `shiplane rollback`: code first, the schema kept where the old code runs on it).

Bad is one of: the process crashed (the supervisor restarted it, or it is down); the health
monitor's probes failed ``watch_failed_probes`` times in a row; or its 5xx rate through the
front door rose more than ``watch_error_rate`` above the old instance's (the pre-switch
baseline) once it has answered ``watch_min_requests`` requests, so a few clients provoking
errors cannot force a rollback.

The watch never runs a destructive ``down`` on its own: its rollback passes ``keep_schema``,
which refuses where the old code fails on the new schema. Then it records an alert (a gate
event and the watch's state) and the new version keeps serving: a person decides.

The server owns the watch: a client that waits (``--wait-watch``) and is killed changes
nothing. A server that stops during a watch ends it as ``interrupted`` when it starts again
(``WatchStore.interrupt_running``): the counts it judged by died with it, and a deploy whose
watch never ended cleanly is no promotion evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shiplane.gate import events
from shiplane.state.db import StateDB
from shiplane.state.watches import LOCK_PATIENCE, WatchStore

log = logging.getLogger("shiplane.server.watch")

TICK = 0.2  # seconds between looks: a crash is seen well within one health-monitor interval
ACTOR = "server:watch"

Rollback = Callable[[str, str], Awaitable[dict[str, Any]]]
# tell(app, env, event, detail): a notification about what the watch did (shiplane.notify).
Tell = Callable[[str, str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class WatchSettings:
    seconds: float
    failed_probes: int = 3
    min_requests: int = 20
    error_rate: float = 0.1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchSettings:
        return cls(
            seconds=float(data["seconds"]),
            failed_probes=int(data.get("failed_probes", 3)),
            min_requests=int(data.get("min_requests", 20)),
            error_rate=float(data.get("error_rate", 0.1)),
        )


@dataclass(frozen=True)
class Sample:
    """What the server knows of the watched instance at one look."""

    restarts: int
    process_state: str
    failed_probes: int
    answered: int
    errors: int


def verdict(sample: Sample, baseline: float, settings: WatchSettings) -> str | None:
    """Why the instance is bad, or None. ``baseline``: the old instance's 5xx rate."""
    if sample.restarts > 0 or sample.process_state in ("crashed", "stopped"):
        return f"the new instance crashed ({sample.restarts} restart(s), {sample.process_state})"
    if sample.failed_probes >= settings.failed_probes:
        return f"{sample.failed_probes} health probes in a row failed"
    if sample.answered >= settings.min_requests:
        rate = sample.errors / sample.answered
        if rate > baseline + settings.error_rate:
            return (
                f"5xx rate {rate:.0%} ({sample.errors} of {sample.answered} requests) above the "
                f"pre-switch {baseline:.0%} by more than {settings.error_rate:.0%}"
            )
    return None


class Observed(Protocol):
    """What the watch reads of the server: the serving instance's process, its probes and
    its answers through the front door."""

    def sample(self, app: str, env: str, instance_id: str) -> Sample | None: ...
    def answered(self, app: str, env: str, instance_id: str) -> tuple[int, int]: ...
    def serving(self, app: str, env: str) -> str | None: ...
    def state_db(self, app: str) -> Path: ...


@dataclass
class Watch:
    app: str
    env: str
    deployment_id: str
    instance_id: str
    settings: WatchSettings
    baseline: float
    ends: float
    task: asyncio.Task[None] | None = None
    acting: bool = False  # rolling back: the rollback's own switch does not end this watch


class Watches:
    def __init__(self, observed: Observed) -> None:
        self.observed = observed
        self.rollback: Rollback | None = None  # set by the server once operations can run
        self.tell: Tell | None = None  # notifications; returns at once (sends in the background)
        self._running: dict[tuple[str, str], Watch] = {}
        self._ending: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak refs

    def use(self, rollback: Rollback, tell: Tell | None = None) -> None:
        self.rollback = rollback
        self.tell = tell

    def running(self, app: str, env: str) -> Watch | None:
        return self._running.get((app, env))

    async def start(
        self,
        app: str,
        env: str,
        deployment_id: str,
        instance_id: str,
        previous_id: str | None,
        settings: WatchSettings,
    ) -> dict[str, Any]:
        """Watch ``instance_id`` (what serves ``env`` now) for ``settings.seconds``."""
        key = (app, env)
        if self.observed.serving(app, env) != instance_id:
            raise ValueError(f"instance {instance_id} does not serve {app}/{env}")
        earlier = self._running.get(key)
        if earlier is not None and earlier.deployment_id != deployment_id:
            await self.cancel(app, env, f"superseded by {deployment_id}")
        elif earlier is not None:
            return self._describe(earlier)  # asked twice (a retried request)
        total, errors = self.observed.answered(app, env, previous_id) if previous_id else (0, 0)
        baseline = errors / total if total else 0.0
        watch = Watch(
            app, env, deployment_id, instance_id, settings, baseline, time.time() + settings.seconds
        )
        await self._write(app, lambda s: s.begin(deployment_id, env, instance_id, settings.seconds))
        self._running[key] = watch
        watch.task = asyncio.create_task(self._run(watch))
        log.info("%s/%s: watching %s for %gs", app, env, instance_id, settings.seconds)
        return self._describe(watch)

    async def cancel(self, app: str, env: str, why: str) -> None:
        """End ``env``'s watch, if any, without a verdict (another switch came first)."""
        watch = self._running.pop((app, env), None)
        if watch is None:
            return
        if watch.task is not None and watch.task is not asyncio.current_task():
            watch.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch.task
        await self._write(app, lambda s: s.end(watch.deployment_id, "superseded", why))

    def switched(self, app: str, env: str, instance_id: str | None) -> None:
        """A switch in ``env``: a watch of another instance is over (a deploy's undo, a
        rollback, a later deploy). Called on the loop, so the end is scheduled."""
        watch = self._running.get((app, env))
        if watch is not None and not watch.acting and watch.instance_id != instance_id:
            why = f"traffic moved to {instance_id or 'nothing'}"
            ending = asyncio.get_running_loop().create_task(self.cancel(app, env, why))
            self._ending.add(ending)
            ending.add_done_callback(self._ending.discard)

    async def close(self) -> None:
        """Server shutdown: each running watch ends as interrupted."""
        for app, env in list(self._running):
            watch = self._running.pop((app, env))
            if watch.task is not None:
                watch.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch.task
            with contextlib.suppress(Exception):
                await self._write(app, _interrupted(watch.deployment_id))

    async def _run(self, watch: Watch) -> None:
        try:
            while time.time() < watch.ends:
                sample = self.observed.sample(watch.app, watch.env, watch.instance_id)
                reason = "the watched instance is gone" if sample is None else None
                if sample is not None:
                    reason = verdict(sample, watch.baseline, watch.settings)
                if reason is not None:
                    await self._went_bad(watch, reason, sample)
                    return
                await asyncio.sleep(TICK)
            sample = self.observed.sample(watch.app, watch.env, watch.instance_id)
            await self._finish(watch, "clean", None, sample=_counts(sample))
            log.info("%s/%s: watch of %s ended clean", watch.app, watch.env, watch.instance_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s/%s: the watch failed", watch.app, watch.env)
            with contextlib.suppress(Exception):  # state.db itself may be what failed
                await self._finish(watch, "interrupted", "the watch itself failed (server log)")

    async def _went_bad(self, watch: Watch, reason: str, sample: Sample | None) -> None:
        log.warning("%s/%s: %s went bad: %s", watch.app, watch.env, watch.instance_id, reason)
        watch.acting = True
        if self.rollback is None:
            await self._alert(watch, reason, "this server runs no operations", sample)
            return
        deadline = time.monotonic() + LOCK_PATIENCE
        while True:
            result = await self.rollback(watch.app, watch.env)
            error = result.get("error") or {}
            if result.get("ok"):
                rollback_id = result.get("deployment_id")
                await self._write(
                    watch.app,
                    lambda s: s.db.update_deployment(
                        watch.deployment_id, status="rolled_back_after_watch"
                    ),
                )
                await self._finish(
                    watch, "rolled_back", reason, rollback_id, sample=_counts(sample)
                )
                self._tell(watch, "rolled_back_after_watch", reason, rollback_id=rollback_id)
                return
            if error.get("step") == "lock" and time.monotonic() < deadline:
                if self.observed.serving(watch.app, watch.env) != watch.instance_id:
                    # The operation holding the lock moved traffic: nothing left to undo.
                    await self._finish(watch, "superseded", f"{reason}; traffic moved meanwhile")
                    return
                await asyncio.sleep(1.0)
                continue
            why = str(error.get("message") or "the rollback failed")
            await self._alert(watch, reason, why, sample, result.get("deployment_id"))
            return

    async def _alert(
        self,
        watch: Watch,
        reason: str,
        why: str,
        sample: Sample | None,
        rollback_id: str | None = None,
    ) -> None:
        """Bad, but not rolled back: recorded for whoever asks; the new version serves on."""
        log.error("%s/%s: ALERT %s; not rolled back: %s", watch.app, watch.env, reason, why)

        def write(store: WatchStore) -> None:
            events.record(
                store.db,
                watch.env,
                "watch",
                "alert",
                ACTOR,
                deployment_id=watch.deployment_id,
                reason=reason,
                not_rolled_back=why,
                rollback_id=rollback_id,
            )

        await self._write(watch.app, write)
        await self._finish(
            watch, "alert", reason, rollback_id, not_rolled_back=why, sample=_counts(sample)
        )
        self._tell(watch, "watch_alert", f"{reason}; not rolled back: {why}")

    def _tell(self, watch: Watch, event: str, reason: str, **detail: Any) -> None:
        if self.tell is None:
            return
        try:
            self.tell(
                watch.app,
                watch.env,
                event,
                {"deployment_id": watch.deployment_id, "reason": reason, **detail},
            )
        except Exception:  # a notification never changes what the watch did
            log.exception("%s/%s: the %s notification failed", watch.app, watch.env, event)

    async def _finish(
        self,
        watch: Watch,
        state: str,
        reason: str | None,
        rollback_id: str | None = None,
        **detail: Any,
    ) -> None:
        if self._running.get((watch.app, watch.env)) is watch:
            del self._running[(watch.app, watch.env)]
        await self._write(
            watch.app,
            lambda s: s.end(watch.deployment_id, state, reason, rollback_id, **detail),
        )

    async def _write(self, app: str, change: Callable[[WatchStore], object]) -> None:
        path = self.observed.state_db(app)

        def run() -> None:
            db = StateDB(path)
            try:
                change(WatchStore(db))
            finally:
                db.close()

        await asyncio.to_thread(run)

    @staticmethod
    def _describe(watch: Watch) -> dict[str, Any]:
        return {
            "deployment_id": watch.deployment_id,
            "instance_id": watch.instance_id,
            "state": "running",
            "seconds": watch.settings.seconds,
            "baseline_5xx_rate": round(watch.baseline, 4),
            "ends_epoch": watch.ends,
        }


def _interrupted(deployment_id: str) -> Callable[[WatchStore], None]:
    def end(store: WatchStore) -> None:
        store.end(deployment_id, "interrupted", "the server stopped during the watch")

    return end


def _counts(sample: Sample | None) -> dict[str, int] | None:
    if sample is None:
        return None
    return {
        "answered": sample.answered,
        "errors": sample.errors,
        "restarts": sample.restarts,
        "failed_probes": sample.failed_probes,
    }
