"""What the server reports: each environment's status (its door, instances, health, workers,
standby, memory and connections), the migrations its serving release has applied, and the
whole server's status. Read-only views over the server core's parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shiplane.databases import open_database, resolve_url
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.workers import WorkerFrontDoor
from shiplane.migrate.registry import release_engine
from shiplane.server.drains import Drains
from shiplane.server.env_report import runtime
from shiplane.server.envkey import EnvKey
from shiplane.server.health_monitor import HealthMonitor
from shiplane.server.privileges import Enforcement
from shiplane.server.standby import Standbys
from shiplane.server.workers import WorkerPool
from shiplane.targets.processes import ManagedProcess


class StatusReport:
    def __init__(
        self,
        instances: Mapping[str, ManagedProcess],
        frontdoors: Mapping[EnvKey, BuiltinFrontDoor],
        standbys: Standbys,
        drains: Drains,
        health: HealthMonitor,
        workers: WorkerPool,
        enforcement: Enforcement | None,
        started_at: float,
    ) -> None:
        self.instances = instances
        self.frontdoors = frontdoors
        self.standbys = standbys
        self.drains = drains
        self.health = health
        self.workers = workers
        self.enforcement = enforcement
        self.started_at = started_at

    async def health_of(self, instance_id: str) -> dict[str, Any] | None:
        instance = self.instances.get(instance_id)
        return await self.health.report(instance) if instance is not None else None

    def instances_of(self, key: EnvKey) -> list[ManagedProcess]:
        """The env's instances but its standby (status shows that one on its own)."""
        standbys = self.standbys.ids()
        return [
            i
            for i in self.instances.values()
            if (i.spec.app, i.spec.env) == key and i.id not in standbys
        ]

    async def env_status(self, key: EnvKey) -> dict[str, Any]:
        door = self.frontdoors.get(key)
        active = door.active() if door else None
        stats = door.stats() if door else None
        instances = [i.describe() for i in self.instances_of(key)]
        draining = self.drains.pending(key)
        for item in instances:
            item["inflight"] = stats.inflight.get(item["id"], 0) if stats else 0
            item["serving"] = active is not None and active.instance_id == item["id"]
            item["draining"] = item["id"] in draining
        serving = self.instances.get(active.instance_id) if active else None
        return {
            "app": key.app,
            "env": key.env,
            "port": stats.port if stats else None,
            "active": active.info if active else None,
            "health": await self.health_of(active.instance_id) if active else None,
            "requests": stats.requests if stats else 0,
            "instances": instances,
            "workers": self.workers.listing(key),
            **await runtime(serving, self.standbys.get(key), self.health.report),
            "front_door": door_status(door),
        }

    async def env_migrations(self, key: EnvKey) -> dict[str, Any]:
        env = key.env
        door = self.frontdoors.get(key)
        active = door.active() if door else None
        if active is None:
            return {"env": env, "applied": []}
        instance = self.instances.get(active.instance_id)
        url = instance.spec.database_url if instance else None
        if instance is None or not url:
            return {"env": env, "database": None, "applied": []}
        database = open_database(resolve_url(url, instance.secrets))
        release = Path(instance.spec.release_dir)
        plan = await asyncio.to_thread(lambda: release_engine(release, database).status(release))
        return {"env": env, "database": database.kind, "applied": plan.applied}

    async def status(self) -> dict[str, Any]:
        apps: dict[str, dict[str, Any]] = {}
        for key in sorted(self.frontdoors):
            apps.setdefault(key.app, {})[key.env] = await self.env_status(key)
        mode = self.enforcement.describe() if self.enforcement else {"mode": "single-user"}
        return {**mode, "uptime_s": round(time.time() - self.started_at, 1), "apps": apps}


def door_status(door: BuiltinFrontDoor | None) -> dict[str, Any] | None:
    if door is None:
        return None
    stats = door.stats()
    return {
        "listen": f"{door.settings.host}:{stats.port}",
        "domains": list(door.settings.domains),
        "connections": stats.connections,
        "websockets": stats.websockets,
        "held": stats.held,
        "waiting": stats.waiting,
        "held_timeouts": stats.held_timeouts,
        "maintenance": stats.maintenance,
        "tripped": dict(stats.tripped),
        "tls": door.certificates(),
        **({"workers": door.worker_status()} if isinstance(door, WorkerFrontDoor) else {}),
    }
