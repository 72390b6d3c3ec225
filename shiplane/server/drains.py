"""Drains that outlive the deploy that started them.

A deploy returns once the new instance serves (switch, smoke, record); the old one finishes its
in-flight requests here, in the server, and is stopped (a deploy run with ``--wait-drain``
awaits the same task, so status shows every drain alike). Its outcome goes to the server log and
to the deployment's own log: the deployment succeeded at the switch, and a drain that goes wrong
later never undoes it. A later start in the same environment waits for the env's pending drains
first, so an environment never runs more than its serving instance, the new one and one
draining. A drain asked to keep its instance warm (``deploy.standby``) ends with the instance on
standby instead of stopped (``shiplane.server.standby``), which replaces the env's previous
standby: serving + new + one standby, at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("shiplane.server")


class Drains:
    def __init__(self) -> None:
        self._pending: dict[Any, dict[str, asyncio.Task[bool]]] = {}

    def pending(self, key: Any) -> list[str]:
        """The instance ids still draining in ``key``'s environment."""
        return list(self._pending.get(key, {}))

    def start(
        self,
        key: Any,
        instance_id: str,
        drain: Callable[[], Awaitable[bool]],
        deploy_log: Path | None,
        then: str = "stopped",
    ) -> asyncio.Task[bool]:
        """Run ``drain`` (wait for in-flight requests, then stop, or keep on standby: ``then``
        says which, for the logs) in the background; the task says whether every request
        finished in time (False too when the drain failed)."""
        tasks = self._pending.setdefault(key, {})
        if instance_id not in tasks:  # asked twice (a retried request): one drain is enough
            run = self._run(key, instance_id, drain, deploy_log, then)
            tasks[instance_id] = asyncio.create_task(run)
        return tasks[instance_id]

    async def settle(self, key: Any) -> list[str]:
        """Wait until ``key``'s pending drains are over (each is bounded by its drain and stop
        timeouts); returns the ids that were waited for."""
        tasks = dict(self._pending.get(key, {}))
        if tasks:
            log.info("%s: waiting for the drain of %s", key, ", ".join(tasks))
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        return list(tasks)

    async def _run(
        self,
        key: Any,
        instance_id: str,
        drain: Callable[[], Awaitable[bool]],
        deploy_log: Path | None,
        then: str,
    ) -> bool:
        drained = False
        try:
            drained = await drain()
        except Exception as exc:  # any failure here is reported, never raised into a deploy
            log.exception("%s: draining %s failed", key, instance_id)
            note = f"background drain of {instance_id} failed: {type(exc).__name__}: {exc}"
        else:
            note = (
                f"background drain: {instance_id} drained and {then}"
                if drained
                else f"background drain: {instance_id} {then} with requests still in flight "
                "at the drain timeout"
            )
            log.info("%s: %s", key, note)
        finally:
            tasks = self._pending.get(key, {})
            tasks.pop(instance_id, None)
            if not tasks:
                self._pending.pop(key, None)
        if deploy_log is not None:
            await asyncio.to_thread(_append, deploy_log, note)
        return drained


def _append(path: Path, text: str) -> None:
    """One line in the deployment's log, in its own format (which closed at the result)."""
    stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {text}\n")
    except OSError as exc:
        log.warning("cannot append to %s: %s", path, exc)
