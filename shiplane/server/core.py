"""The server's state: app instances, one front door per environment, restore after restart."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from shiplane.config.envfile import read_env_file
from shiplane.config.redact import Redactor
from shiplane.databases import open_database, resolve_url
from shiplane.errors import ShiplaneError
from shiplane.frontdoor.base import FrontDoor, Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.endpoints import DeployEndpoints
from shiplane.layout import Layout
from shiplane.migrate.registry import release_engine
from shiplane.server.listener import tcp_socket
from shiplane.state.db import StateDB
from shiplane.state.envvars import kept_layers
from shiplane.targets.base import InstanceSpec
from shiplane.targets.health import HealthPolicy, wait_healthy
from shiplane.targets.processes import ManagedProcess, free_port

log = logging.getLogger("shiplane.server")


class PortInUse(Exception):
    pass


class ServerCore:
    def __init__(self, layout: Layout, token: str) -> None:
        self.layout = layout
        self.token = token
        self.instances: dict[str, ManagedProcess] = {}
        self.frontdoors: dict[str, FrontDoor] = {}
        self.started_at = time.time()
        self.redactor = Redactor()
        self._background: set[asyncio.Task[None]] = set()
        # Set once what state.db says serves has been started again after a (re)start: until
        # then a deploy would see no active instance and leave the restored one undrained.
        self.restored = asyncio.Event()

    # instances ---------------------------------------------------------------------------
    async def start_instance(self, spec: InstanceSpec) -> ManagedProcess:
        secrets = read_env_file(Path(spec.env_file), field="env_file") if spec.env_file else {}
        secrets = self._with_kept_secrets(spec.env, secrets)
        self.redactor.add(secrets.values())
        instance = ManagedProcess(spec=spec, port=free_port(), secrets=secrets)
        self.instances[instance.id] = instance
        await instance.start(self.redactor)
        return instance

    def _with_kept_secrets(self, env: str, secrets: dict[str, str]) -> dict[str, str]:
        """The env file's secrets with the server-kept ones over them. A kept secret's value
        is read here, at start, rather than carried in the spec: the spec is stored in step
        records and state, and a secret has no business there. A kept plain variable (already
        in ``spec.variables``) also hides an env-file secret of the same name: kept wins."""
        db = StateDB(self.layout.state_db)
        try:
            plain, kept = kept_layers(db, env)
        finally:
            db.close()
        return {**{k: v for k, v in secrets.items() if k not in plain}, **kept}

    async def stop_instance(self, instance_id: str) -> bool:
        instance = self.instances.pop(instance_id, None)
        if instance is None:
            return False
        await instance.stop()
        return True

    # front doors -------------------------------------------------------------------------
    def ensure_frontdoor(self, env: str, port: int) -> FrontDoor:
        door = self.frontdoors.get(env)
        if door is not None and door.stats().port == port:
            return door
        try:
            sock = tcp_socket(port)
        except OSError as exc:
            raise PortInUse(f"port {port} for environment {env!r} is in use: {exc}") from exc
        endpoints = DeployEndpoints(env, self.token, self.env_status, self.env_migrations)
        new = BuiltinFrontDoor(env, port, endpoints.answer)
        if door is not None:
            new.switch(door.active())  # the port changed in config; keep serving
            self._background.add(asyncio.create_task(door.close()))
        new.listen(sock)
        self.frontdoors[env] = new
        return new

    def switch(
        self, env: str, port: int, instance_id: str | None, info: dict[str, Any] | None
    ) -> str | None:
        """Point the env's front door at an instance (None: serve nothing, 503)."""
        if instance_id is None:
            door = self.frontdoors.get(env)
            previous = door.switch(None) if door else None
            return previous.instance_id if previous else None
        instance = self.instances.get(instance_id)
        if instance is None:
            raise KeyError(instance_id)
        door = self.ensure_frontdoor(env, port)
        address = instance.as_instance().address
        previous = door.switch(Upstream(instance_id, address.host, address.port, info or {}))
        return previous.instance_id if previous else None

    async def restore_env(self, env: str) -> str | None:
        """Serve what state.db records for ``env`` (undo when the old instance is gone)."""
        db = StateDB(self.layout.state_db)
        try:
            state = db.env_state(env)
        finally:
            db.close()
        if not state or not state.get("spec"):
            self.switch(env, 0, None, None)
            return None
        return await self._restore_env(state, InstanceSpec.from_stored(state["spec"]))

    async def drain(self, env: str, instance_id: str, timeout: float) -> bool:
        door = self.frontdoors.get(env)
        drained = True
        if door is not None:
            active = door.active()
            if active is not None and active.instance_id == instance_id:
                raise ValueError(f"instance {instance_id} is serving {env}; switch first")
            drained = await door.drain(instance_id, timeout)
        await self.stop_instance(instance_id)
        return drained

    # status providers --------------------------------------------------------------------
    async def env_status(self, env: str) -> dict[str, Any]:
        door = self.frontdoors.get(env)
        active = door.active() if door else None
        stats = door.stats() if door else None
        instances = [i.describe() for i in self.instances.values() if i.spec.env == env]
        for item in instances:
            item["inflight"] = stats.inflight.get(item["id"], 0) if stats else 0
            item["serving"] = active is not None and active.instance_id == item["id"]
        return {
            "env": env,
            "port": stats.port if stats else None,
            "active": active.info if active else None,
            "requests": stats.requests if stats else 0,
            "instances": instances,
        }

    async def env_migrations(self, env: str) -> dict[str, Any]:
        door = self.frontdoors.get(env)
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
        return {
            "uptime_s": round(time.time() - self.started_at, 1),
            "envs": {env: await self.env_status(env) for env in sorted(self.frontdoors)},
        }

    # restore after a restart -------------------------------------------------------------
    async def restore(self) -> None:
        """Start what state.db says serves each environment (after a server restart)."""
        try:
            await self._restore_all()
        finally:
            self.restored.set()

    async def _restore_all(self) -> None:
        if not self.layout.state_db.exists():
            return
        db = StateDB(self.layout.state_db)
        try:
            states = db.all_env_states()
        finally:
            db.close()
        for state in states:
            spec_data = state.get("spec") or {}
            if not spec_data or not state.get("port"):
                continue
            try:
                await self._restore_env(state, InstanceSpec.from_stored(spec_data))
            except (ShiplaneError, PortInUse, OSError, ValueError) as exc:
                log.error("restoring %s failed: %s", state["env"], exc)

    async def _restore_env(self, state: dict[str, Any], spec: InstanceSpec) -> str:
        instance = await self.start_instance(spec)
        # Serve it even when unhealthy after the wait: it is what state.db says serves, and
        # the old instance is gone; health reporting says the rest.
        await asyncio.to_thread(
            wait_healthy,
            instance.as_instance().address.url(spec.health),
            HealthPolicy(interval=0.2, timeout=60, request_timeout=2),
        )
        info = {
            "sha": state["sha"],
            "release": state["release"],
            "deployment_id": state.get("deployment_id"),
            "deployed_at": state.get("updated_at"),
        }
        previous = self.switch(state["env"], int(state["port"]), instance.id, info)
        self._record_instance(state["env"], instance.id)
        if previous and previous != instance.id:
            door = self.frontdoors[state["env"]]
            await door.drain(previous, spec.drain_timeout)
            await self.stop_instance(previous)
        return instance.id

    def _record_instance(self, env: str, instance_id: str) -> None:
        db = StateDB(self.layout.state_db)
        try:
            db.set_serving_instance(env, instance_id)
        finally:
            db.close()

    async def shutdown(self) -> None:
        for door in self.frontdoors.values():
            await door.close()
        await asyncio.gather(*(i.stop() for i in self.instances.values()), return_exceptions=True)
        self.instances.clear()
