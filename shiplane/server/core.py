"""The host's server state: app instances, one front door per (app, environment), restore after
a restart. One server serves every app under its root; a port belongs to one (app, env).

The parts live beside it: front doors in ``doors`` (claims on ports and domains in ``claims``),
status in ``status_report``, restoring what served in ``restore``; this class ties them to the
instances it supervises and keeps the methods the control routes call."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from shiplane.config.envfile import read_env_file
from shiplane.config.redact import Redactor
from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.endpoints import DeployEndpoints
from shiplane.frontdoor.settings import DoorSettings
from shiplane.frontdoor.static import for_release
from shiplane.frontdoor.tls import CertificateStore
from shiplane.launch import launcher
from shiplane.launch.base import RunAs
from shiplane.layout import ServerLayout
from shiplane.server import restore as restoring
from shiplane.server.claims import PortInUse, shared_ports
from shiplane.server.doors import FrontDoors
from shiplane.server.drains import Drains
from shiplane.server.envkey import EnvKey
from shiplane.server.health_monitor import HealthMonitor
from shiplane.server.privileges import Enforcement
from shiplane.server.standby import Standbys
from shiplane.server.status_report import StatusReport
from shiplane.server.watch import Watches
from shiplane.server.watch_sources import ServerView
from shiplane.server.workers import WorkerPool
from shiplane.serversettings import load_settings
from shiplane.state.db import StateDB
from shiplane.state.envvars import kept_layers
from shiplane.targets.base import InstanceSpec
from shiplane.targets.health import HealthOutcome, HealthPolicy
from shiplane.targets.processes import ManagedProcess, free_port

# Callers import these from here, as before the split.
__all__ = ["EnvKey", "PortInUse", "ServerCore", "shared_ports"]


class ServerCore:
    def __init__(
        self, layout: ServerLayout, token: str, enforcement: Enforcement | None = None
    ) -> None:
        self.layout = layout
        self.token = token
        self.enforcement = enforcement
        self.instances: dict[str, ManagedProcess] = {}
        self.doors = FrontDoors(layout, self._endpoints)
        # The doors' own maps, under the names the rest of the server reads.
        self.frontdoors = self.doors.doors
        self.listeners = self.doors.listeners
        self.sni = self.doors.sni
        self.challenges = self.doors.challenges
        self.budget = self.doors.budget
        self.started_at = time.time()
        self.redactor = Redactor()
        self.drains = Drains()
        # Set once what state.db says serves has been started again after a (re)start: until
        # then a deploy would see no active instance and leave the restored one undrained.
        self.restored = asyncio.Event()
        self.standbys = Standbys(self.stop_instance, self._probe, self.drains.settle)
        # Standbys are probed like serving instances: a rollback trusts only a healthy one.
        self.health = HealthMonitor(self._probed_instances)
        self.workers = WorkerPool(self.prepare_process, self.redactor)
        self.watches = Watches(
            ServerView(self.instances, self.health, self.frontdoors, self.layout)
        )
        self.report = StatusReport(
            self.instances,
            self.frontdoors,
            self.standbys,
            self.drains,
            self.health,
            self.workers,
            enforcement,
            self.started_at,
        )

    # instances ---------------------------------------------------------------------------
    async def start_instance(self, spec: InstanceSpec) -> ManagedProcess:
        # A deploy returned while its old instance drained: a later one waits for that drain.
        await self.drains.settle(EnvKey(spec.app, spec.env))
        secrets = await self.prepare_process(spec)
        ports = load_settings(self.layout.root).instance_ports  # read now: set without a restart
        taken = {i.port for i in self.instances.values()}
        instance = ManagedProcess(spec=spec, port=free_port(ports, taken), secrets=secrets)
        self.instances[instance.id] = instance
        await instance.start(self.redactor)
        return instance

    async def prepare_process(self, spec: InstanceSpec) -> dict[str, str]:
        """Ready the env's shared dir for a process of ``spec``; returns its secrets."""
        secrets = read_env_file(Path(spec.env_file), field="env_file") if spec.env_file else {}
        secrets = self._with_kept_secrets(spec.app, spec.env, secrets)
        self.redactor.add(secrets.values())
        if spec.app:
            # What the server wrote there (a migrated or restored database) is the app's too.
            shared = self.layout.app(spec.app).shared(spec.env)
            await asyncio.to_thread(launcher().prepare, shared, RunAs(spec.app, spec.env))
        return secrets

    def _with_kept_secrets(self, app: str, env: str, secrets: dict[str, str]) -> dict[str, str]:
        """The env file's secrets with the server-kept ones over them. A kept secret's value
        is read here, at start, rather than carried in the spec: the spec is stored in step
        records and state, and a secret has no business there. A kept plain variable (already
        in ``spec.variables``) also hides an env-file secret of the same name: kept wins."""
        if not app or not self.layout.app(app).state_db.is_file():
            return secrets  # no app's state.db to keep anything in
        db = StateDB(self.layout.app(app).state_db)
        try:
            plain, kept = kept_layers(db, env)
        finally:
            db.close()
        return {**{k: v for k, v in secrets.items() if k not in plain}, **kept}

    async def _probe(self, instance: ManagedProcess) -> str:
        return (await self.health.probe(instance)).state

    def _probed_instances(self) -> list[ManagedProcess]:
        return [*self._serving_instances(), *self.standbys.instances()]

    def _serving_instances(self) -> list[ManagedProcess]:
        """The instances front doors route to now: what the health monitor watches."""
        ids = [a.instance_id for d in self.frontdoors.values() if (a := d.active()) is not None]
        return [self.instances[i] for i in ids if i in self.instances]

    async def health_of(self, instance_id: str) -> dict[str, Any] | None:
        return await self.report.health_of(instance_id)

    async def wait_healthy(
        self, instance_id: str, path: str, policy: HealthPolicy
    ) -> HealthOutcome:
        """Probe an instance until healthy; here, beside the process, so its exit ends the
        wait at once."""
        instance = self.instances.get(instance_id)
        if instance is None:
            raise KeyError(instance_id)
        return await instance.wait_healthy(path, policy)

    async def stop_instance(self, instance_id: str) -> bool:
        self.standbys.forget(instance_id)
        instance = self.instances.pop(instance_id, None)
        if instance is None:
            return False
        await instance.stop()
        return True

    # front doors -------------------------------------------------------------------------
    def door_settings(self, key: EnvKey, port: int, stored: dict[str, Any]) -> DoorSettings:
        return self.doors.door_settings(key, port, stored)

    def ensure_frontdoor(self, key: EnvKey, settings: DoorSettings | int) -> BuiltinFrontDoor:
        return self.doors.ensure(key, settings)

    def _endpoints(self, key: EnvKey) -> DeployEndpoints:
        async def status(_env: str) -> dict[str, Any]:
            return await self.env_status(key)

        async def migrations(_env: str) -> dict[str, Any]:
            return await self.env_migrations(key)

        return DeployEndpoints(key.env, self.token, status, migrations, self.health_of)

    async def confirmed(self, key: EnvKey) -> None:
        """Return once the env's door serves every change made so far (all its workers)."""
        door = self.frontdoors.get(key)
        if door is not None:
            await door.confirmed()

    def maintenance(self, key: EnvKey, on: bool, bypass: str | None) -> bool:
        """Put the env's door in or out of maintenance; False when it has no door yet (the
        first one opens as state.db says)."""
        door = self.frontdoors.get(key)
        if door is not None:
            door.maintenance(on, bypass)
        return door is not None

    async def renew_certificates(self, key: EnvKey) -> list[dict[str, Any]]:
        """Renew the env's ACME certificates now, without closing a connection."""
        door = self.frontdoors.get(key)
        if door is None or door.tls is None:
            raise KeyError(str(key))
        return await door.tls.renew_now()

    def certificate_store(self) -> CertificateStore:
        return self.doors.certificate_store()

    def switch(
        self, key: EnvKey, port: int, instance_id: str | None, info: dict[str, Any] | None
    ) -> str | None:
        """Point the env's front door at an instance (None: serve nothing, 503). The door's
        settings (listen address, domains, limits) travel in the instance's spec."""
        if instance_id is None:
            door = self.frontdoors.get(key)
            previous = door.switch(None) if door else None
            self.watches.switched(key.app, key.env, None)
            return previous.instance_id if previous else None
        instance = self.instances.get(instance_id)
        if instance is None:
            raise KeyError(instance_id)
        door = self.ensure_frontdoor(key, self.door_settings(key, port, instance.spec.front_door))
        address = instance.as_instance().address
        spec = instance.spec
        static = for_release(spec.release_dir, spec.static, spec.static_max_age, door.limits)
        upstream = Upstream(instance_id, address.host, address.port, info or {}, static)
        previous = door.switch(upstream)
        self.watches.switched(key.app, key.env, instance_id)
        return previous.instance_id if previous else None

    async def restore_env(self, key: EnvKey) -> str | None:
        """Serve what state.db records for ``key`` (undo when the old instance is gone)."""
        return await restoring.restore_env(self, key)

    async def drain(
        self, key: EnvKey, instance_id: str, timeout: float, standby: float | None = None
    ) -> bool:
        """Let ``instance_id``'s requests finish, then stop it, or with ``standby`` (seconds)
        keep it running unrouted that long (``shiplane.server.standby``)."""
        self._refuse_serving(key, instance_id)
        door = self.frontdoors.get(key)
        drained = await door.drain(instance_id, timeout) if door is not None else True
        instance = self.instances.get(instance_id)
        if standby and instance is not None and instance.state == "running":
            self.standbys.keep(key, instance, standby)
        else:
            await self.stop_instance(instance_id)
        return drained

    def drain_later(
        self,
        key: EnvKey,
        instance_id: str,
        timeout: float,
        deployment_id: str | None,
        standby: float | None = None,
    ) -> asyncio.Task[bool]:
        """``drain`` as a task of the server's: the deploy that asks has its result already
        (or awaits the task, with ``--wait-drain``)."""
        self._refuse_serving(key, instance_id)
        deploy_log = None
        if deployment_id:
            deploy_log = self.layout.app(key.app).deploy_log(key.env, deployment_id)
        return self.drains.start(
            key,
            instance_id,
            lambda: self.drain(key, instance_id, timeout, standby),
            deploy_log,
            f"kept on standby for {standby:g}s" if standby else "stopped",
        )

    def keep_standby(self, key: EnvKey, instance_id: str, ttl: float) -> bool:
        """Put an instance a rollback claimed back on standby (the rollback was undone)."""
        instance = self.instances.get(instance_id)
        door = self.frontdoors.get(key)
        active = door.active() if door is not None else None
        if instance is None or (active is not None and active.instance_id == instance_id):
            return False
        return self.standbys.keep_again(key, instance, ttl)

    def _refuse_serving(self, key: EnvKey, instance_id: str) -> None:
        door = self.frontdoors.get(key)
        active = door.active() if door is not None else None
        if active is not None and active.instance_id == instance_id:
            raise ValueError(f"instance {instance_id} is serving {key}; switch first")

    # status providers --------------------------------------------------------------------
    def instances_of(self, key: EnvKey) -> list[ManagedProcess]:
        """The env's instances but its standby (status shows that one on its own)."""
        return self.report.instances_of(key)

    async def env_status(self, key: EnvKey) -> dict[str, Any]:
        return await self.report.env_status(key)

    async def env_migrations(self, key: EnvKey) -> dict[str, Any]:
        return await self.report.env_migrations(key)

    async def status(self) -> dict[str, Any]:
        return await self.report.status()

    # restore after a restart -------------------------------------------------------------
    async def restore(self) -> None:
        """Start what state.db says serves each environment (after a server restart)."""
        try:
            await restoring.restore_all(self)
        finally:
            self.restored.set()

    async def shutdown(self) -> None:
        await self.watches.close()
        await self.health.close()
        await self.standbys.close()
        await self.doors.close()
        await self.workers.close()
        await asyncio.gather(*(i.stop() for i in self.instances.values()), return_exceptions=True)
        self.instances.clear()
