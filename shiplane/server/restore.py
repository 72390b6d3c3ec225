"""Serving again what state.db records: every environment of every app when the server
(re)starts, or one environment on request (undo, when its old instance is gone). The release is
built again when it is not on disk; the instance serves even when unhealthy, as the record says."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from shiplane.errors import ShiplaneError
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.layout import ServerLayout
from shiplane.server import rebuild
from shiplane.server.claims import PortInUse
from shiplane.server.envkey import EnvKey
from shiplane.server.workers import WorkerPool
from shiplane.state.db import StateDB
from shiplane.state.watches import WatchStore
from shiplane.targets.base import InstanceSpec
from shiplane.targets.health import HealthPolicy
from shiplane.targets.processes import ManagedProcess

log = logging.getLogger("shiplane.server")


class Serving(Protocol):
    """What restoring needs of the server core."""

    @property
    def layout(self) -> ServerLayout: ...
    @property
    def workers(self) -> WorkerPool: ...
    @property
    def frontdoors(self) -> Mapping[EnvKey, BuiltinFrontDoor]: ...
    async def start_instance(self, spec: InstanceSpec) -> ManagedProcess: ...
    async def stop_instance(self, instance_id: str) -> bool: ...
    def switch(
        self, key: EnvKey, port: int, instance_id: str | None, info: dict[str, Any] | None
    ) -> str | None: ...


async def restore_env(core: Serving, key: EnvKey) -> str | None:
    """Serve what state.db records for ``key`` (undo when the old instance is gone)."""
    db = StateDB(core.layout.app(key.app).state_db)
    try:
        state = db.env_state(key.env)
    finally:
        db.close()
    if not state or not state.get("spec"):
        core.switch(key, 0, None, None)
        return None
    return await restore_state(core, key, state)


async def restore_all(core: Serving) -> None:
    for app in core.layout.app_names():
        try:
            db = StateDB(core.layout.app(app).state_db)
        except ShiplaneError as exc:
            # A damaged state.db says nothing trustworthy about what served: this app
            # stays down until a person restores it; the others come back.
            log.error("not restoring %s: %s", app, exc)
            continue
        try:
            states = db.all_env_states()
            # A watch the last server ran is not resumed: its counts died with it.
            for interrupted in WatchStore(db).interrupt_running():
                log.warning("%s: the watch of %s was interrupted", app, interrupted)
        finally:
            db.close()
        for state in states:
            if not state.get("spec") or not state.get("port"):
                continue
            key = EnvKey(app, state["env"])
            try:
                await restore_state(core, key, state)
            except (ShiplaneError, PortInUse, OSError, ValueError) as exc:
                log.error("restoring %s failed: %s", key, exc)


async def restore_state(core: Serving, key: EnvKey, state: dict[str, Any]) -> str:
    # Records written before one server served several apps name no app: this one's.
    spec = InstanceSpec.from_stored(state["spec"]).model_copy(update={"app": key.app})
    if rebuild.needed(spec):
        log.warning("%s: release %s is not on disk; building it again", key, spec.release)
        await asyncio.to_thread(rebuild.rebuild, core.layout.app(key.app), spec)
    instance = await core.start_instance(spec)
    # Serve it even when unhealthy after the wait: it is what state.db says serves, and
    # the old instance is gone; health reporting says the rest.
    await instance.wait_healthy(
        spec.health, HealthPolicy(interval=0.2, timeout=60, request_timeout=2)
    )
    info = {
        "sha": state["sha"],
        "release": state["release"],
        "deployment_id": state.get("deployment_id"),
        "deployed_at": state.get("updated_at"),
    }
    previous = core.switch(key, int(state["port"]), instance.id, info)
    _record_instance(core.layout, key, instance.id)
    await core.workers.replace(key, spec, grace=0)  # the serving release's workers too
    if previous and previous != instance.id:
        door = core.frontdoors[key]
        await door.drain(previous, spec.drain_timeout)
        await core.stop_instance(previous)
    return instance.id


def _record_instance(layout: ServerLayout, key: EnvKey, instance_id: str) -> None:
    db = StateDB(layout.app(key.app).state_db)
    try:
        db.set_serving_instance(key.env, instance_id)
    finally:
        db.close()
