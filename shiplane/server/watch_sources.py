"""Where the watch (``shiplane.server.watch``) gets what it judges and how it rolls back: a
view over the server core's parts, and the ``rollback`` operation run for the server itself."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shiplane.caller import Caller
from shiplane.config import snapshot
from shiplane.errors import ShiplaneError
from shiplane.notify.message import Notice
from shiplane.server.watch import ACTOR, Rollback, Sample, Tell

if TYPE_CHECKING:
    from shiplane.config.loader import LoadedConfig
    from shiplane.frontdoor.builtin import BuiltinFrontDoor
    from shiplane.layout import ServerLayout
    from shiplane.notify.notifier import Notifier
    from shiplane.results import Result
    from shiplane.server.health_monitor import HealthMonitor
    from shiplane.targets.processes import ManagedProcess


class ServerView:
    """``Observed`` over the server core's parts: its supervised processes, health monitor
    and front doors (keyed by ``EnvKey``, a (app, env) tuple)."""

    def __init__(
        self,
        instances: Mapping[str, ManagedProcess],
        health: HealthMonitor,
        frontdoors: Mapping[Any, BuiltinFrontDoor],
        layout: ServerLayout,
    ) -> None:
        self.instances = instances
        self.health = health
        self.frontdoors = frontdoors
        self.layout = layout

    def sample(self, app: str, env: str, instance_id: str) -> Sample | None:
        instance = self.instances.get(instance_id)
        if instance is None:
            return None
        health = self.health.current(instance_id)
        total, errors = self.answered(app, env, instance_id)
        return Sample(
            restarts=instance.restarts,
            process_state=instance.state,
            failed_probes=health.failures if health is not None else 0,
            answered=total,
            errors=errors,
        )

    def answered(self, app: str, env: str, instance_id: str) -> tuple[int, int]:
        door = self.frontdoors.get((app, env))
        return door.answered(instance_id) if door is not None else (0, 0)

    def serving(self, app: str, env: str) -> str | None:
        door = self.frontdoors.get((app, env))
        active = door.active() if door is not None else None
        return active.instance_id if active is not None else None

    def state_db(self, app: str) -> Path:
        return self.layout.app(app).state_db


class Runner(Protocol):
    """Runs an operation for the server itself (``server.operations.OperationRunner``)."""

    async def run_for_server(
        self, name: str, caller: Caller, loaded: LoadedConfig, **args: Any
    ) -> Result: ...


def watch_rollback(runner: Runner, layout: ServerLayout) -> Rollback:
    """The watch's rollback: the ``rollback`` operation, as `shiplane rollback ENV` runs it,
    with the config the app's last client sent, recorded as the server's watch, and never a
    destructive schema change (``keep_schema``)."""

    async def rollback(app: str, env: str) -> dict[str, Any]:
        try:
            loaded = await asyncio.to_thread(snapshot.load, layout.app(app).config_dir)
        except ShiplaneError as exc:
            return {"ok": False, "error": exc.to_dict()}
        caller = Caller(role="agent", label=ACTOR)
        result = await runner.run_for_server("rollback", caller, loaded, env=env, keep_schema=True)
        return result.to_dict()

    return rollback


def watch_tell(notifier: Notifier, layout: ServerLayout) -> Tell:
    """The watch's notifications, with the config the app's last client sent (read in the
    notifier's thread, never on the event loop)."""

    def tell(app: str, env: str, event: str, detail: dict[str, Any]) -> None:
        rolled_back = event == "rolled_back_after_watch"
        notice = Notice(
            event=event,
            app=app,
            env=env,
            step="watch",
            error=str(detail.get("reason")),
            next_action=(
                f"shiplane status {env}; fix the version and deploy again"
                if rolled_back
                else f"a person decides: shiplane rollback {env} (its schema change is destructive)"
            ),
            deployment_id=detail.get("deployment_id"),
        )
        notifier.submit_loading(lambda: snapshot.load(layout.app(app).config_dir), notice)

    return tell
