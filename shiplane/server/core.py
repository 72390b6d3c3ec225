"""The host's server state: app instances, one front door per (app, environment), restore after
a restart. One server serves every app under its root; a port belongs to one (app, env)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from shiplane.config.envfile import read_env_file
from shiplane.config.redact import Redactor
from shiplane.databases import open_database, resolve_url
from shiplane.errors import ShiplaneError
from shiplane.frontdoor.acme_client import ChallengeResponder
from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.endpoints import DeployEndpoints
from shiplane.frontdoor.https import DoorTls
from shiplane.frontdoor.listener import Listener, reserve_descriptors
from shiplane.frontdoor.settings import DoorSettings
from shiplane.frontdoor.static import for_release
from shiplane.frontdoor.tls import CertificateStore, SniContext
from shiplane.frontdoor.workers import WorkerFrontDoor, settle
from shiplane.launch import launcher
from shiplane.launch.base import RunAs
from shiplane.layout import ServerLayout
from shiplane.migrate.registry import release_engine
from shiplane.server import rebuild
from shiplane.server.drains import Drains
from shiplane.server.env_report import runtime
from shiplane.server.health_monitor import HealthMonitor
from shiplane.server.privileges import Enforcement
from shiplane.server.standby import Standbys
from shiplane.server.watch import Watches
from shiplane.server.watch_sources import ServerView
from shiplane.server.workers import WorkerPool
from shiplane.serversettings import load_settings
from shiplane.state.db import StateDB
from shiplane.state.envvars import kept_layers
from shiplane.state.maintenance import MaintenanceStore
from shiplane.state.watches import WatchStore
from shiplane.targets.base import InstanceSpec
from shiplane.targets.health import HealthOutcome, HealthPolicy
from shiplane.targets.processes import ManagedProcess, free_port

log = logging.getLogger("shiplane.server")


class PortInUse(Exception):
    pass


def shared_ports(settings: DoorSettings) -> dict[int, str]:
    """The ports a door shares with others by host name, and the scheme each serves."""
    ports: dict[int, str] = {}
    if settings.shared_port is not None:
        ports[settings.shared_port] = "https" if settings.tls is not None else "http"
    if settings.tls is not None and settings.shared_port is not None:
        ports[settings.tls.http_port] = "http"
    return ports


class EnvKey(NamedTuple):
    app: str
    env: str

    def __str__(self) -> str:
        return f"{self.app}/{self.env}"


class ServerCore:
    def __init__(
        self, layout: ServerLayout, token: str, enforcement: Enforcement | None = None
    ) -> None:
        self.layout = layout
        self.token = token
        self.enforcement = enforcement
        self.instances: dict[str, ManagedProcess] = {}
        self.frontdoors: dict[EnvKey, BuiltinFrontDoor] = {}
        self.listeners: dict[int, Listener] = {}
        # HTTPS: one SNI context per TLS listener (by port), one challenge map for every
        # plain-HTTP port a TLS door answers ACME on (tokens are unique), one store.
        self.sni: dict[int, SniContext] = {}
        self.challenges = ChallengeResponder()
        self._certs: CertificateStore | None = None
        # Raise the descriptor limit and cap client connections well below it, so a flood on
        # one front door leaves descriptors for the others and for the control socket.
        self.budget = reserve_descriptors()
        self.started_at = time.time()
        self.redactor = Redactor()
        self._background: set[asyncio.Task[None]] = set()
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
        instance = self.instances.get(instance_id)
        return await self.health.report(instance) if instance is not None else None

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
        """The door settings an instance's spec carries, with the access log under the env."""
        settings = DoorSettings.from_dict(stored, port)
        log = str(self.layout.app(key.app).logs(key.env) / "access.log")
        return replace(settings, access_log=log)

    def ensure_frontdoor(self, key: EnvKey, settings: DoorSettings | int) -> BuiltinFrontDoor:
        if isinstance(settings, int):
            settings = DoorSettings(port=settings)
        door = self.frontdoors.get(key)
        if door is not None and door.settings == settings:
            return door
        self._check_claims(key, settings)
        if settings.workers > 1 or isinstance(door, WorkerFrontDoor):
            return self._worker_door(key, door, settings)
        own = self._listener(key, settings.own_host, settings.port, settings)
        shared = plain = tls = None
        if settings.shared_port is not None:
            https = settings.tls is not None
            shared = self._listener(key, settings.host, settings.shared_port, settings, https)
        if settings.tls is not None and shared is not None:
            plain = self._listener(key, settings.host, settings.tls.http_port, settings)
            plain.challenges = self.challenges
            tls = DoorTls(
                settings.tls,
                settings.domains,
                shared.port,
                self.sni[shared.port],
                self.certificate_store(),
                self.challenges,
                self.layout.acme_accounts,
            )
            tls.start()  # own files that do not load raise here, before any traffic moves

        endpoints = self._endpoints(key)
        new = BuiltinFrontDoor(key.env, settings.port, endpoints.answer, settings=settings, tls=tls)
        new.attach(own)
        for joined in (shared, plain):
            if joined is not None:
                new.attach(joined, own=False)
        # Maintenance outlives a door: the old one's, or what state.db records (a restart).
        new.maintenance(*(door.maintenance_mode() if door else self._stored_maintenance(key)))
        if door is not None:
            new.switch(door.active())  # the settings changed in config; keep serving
            self._background.add(asyncio.create_task(self._retire(door)))
        # From here on, requests reach the new door.
        own.add(new, ())
        for joined in (shared, plain):
            if joined is not None:
                joined.add(new, settings.domains)
        self.frontdoors[key] = new
        return new

    def _endpoints(self, key: EnvKey) -> DeployEndpoints:
        async def status(_env: str) -> dict[str, Any]:
            return await self.env_status(key)

        async def migrations(_env: str) -> dict[str, Any]:
            return await self.env_migrations(key)

        return DeployEndpoints(key.env, self.token, status, migrations, self.health_of)

    def _worker_door(
        self, key: EnvKey, door: BuiltinFrontDoor | None, settings: DoorSettings
    ) -> WorkerFrontDoor:
        """``front_door.workers`` > 1 (frontdoor/workers.py), or any number once the env had
        workers (until a restart): the old door hands its port over without a gap."""
        new = WorkerFrontDoor(key.env, settings, self._endpoints(key).answer, door)
        new.maintenance(*(door.maintenance_mode() if door else self._stored_maintenance(key)))
        if door is not None:
            new.switch(door.active())
            # A one-process door's requests finish before it closes (the workers' own leave).
            quiet = not isinstance(door, WorkerFrontDoor)
            self._background.add(asyncio.create_task(self._retire(door, quiet)))
        self.frontdoors[key] = new
        return new

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

    def _stored_maintenance(self, key: EnvKey) -> tuple[bool, str | None]:
        if not key.app or not self.layout.app(key.app).state_db.is_file():
            return False, None
        db = StateDB(self.layout.app(key.app).state_db)
        try:
            current = MaintenanceStore(db).current(key.env)
        finally:
            db.close()
        return current.enabled, current.bypass

    async def renew_certificates(self, key: EnvKey) -> list[dict[str, Any]]:
        """Renew the env's ACME certificates now, without closing a connection."""
        door = self.frontdoors.get(key)
        if door is None or door.tls is None:
            raise KeyError(str(key))
        return await door.tls.renew_now()

    def certificate_store(self) -> CertificateStore:
        if self._certs is None:
            self._certs = CertificateStore(self.layout.certs)
        return self._certs

    def _check_claims(self, key: EnvKey, settings: DoorSettings) -> None:
        """Refuse a port or a domain that another app or environment holds, naming both."""
        mine = shared_ports(settings)
        for other, door in self.frontdoors.items():
            if other == key:
                continue
            held = door.settings
            taken = set(settings.domains) & set(held.domains)
            if taken:
                raise PortInUse(
                    f"domain {sorted(taken)[0]} for {key} is already claimed by {other}; "
                    "give each environment its own domains"
                )
            theirs = shared_ports(held)
            if settings.port == held.port or settings.port in theirs:
                raise PortInUse(
                    f"port {settings.port} for {key} is already the front door of {other}"
                )
            for port, scheme in mine.items():
                if port == held.port:
                    raise PortInUse(f"port {port} for {key} is already the front door of {other}")
                if port not in theirs:
                    continue
                if theirs[port] != scheme:
                    raise PortInUse(
                        f"port {port} for {key} would serve {scheme} but {other} serves "
                        f"{theirs[port]} there; share a port only with the same scheme"
                    )
                if held.host != settings.host:
                    raise PortInUse(
                        f"port {port} for {key} listens on {settings.host} but {other} shares "
                        f"it on {held.host}; use the same listen address"
                    )

    def _listener(
        self, key: EnvKey, host: str, port: int, settings: DoorSettings, https: bool = False
    ) -> Listener:
        listener = self.listeners.get(port)
        if listener is not None:
            if (listener.ssl_context is not None) != https:
                # _check_claims refuses this between doors; a door's own ports must differ.
                raise PortInUse(f"port {port} for {key} is already served with another scheme")
            return listener
        sni = SniContext() if https else None
        listener = Listener(
            host,
            port,
            ssl_context=sni.context if sni is not None else None,
            budget=self.budget,
            limits=settings.limits,
        )
        try:
            sock = listener.bind()
        except OSError as exc:
            raise PortInUse(f"port {port} for {key} is in use: {exc}") from exc
        self.listeners[port] = listener
        if sni is not None:
            self.sni[port] = sni
        self._background.add(asyncio.create_task(listener.start(sock)))
        return listener

    async def _retire(self, door: BuiltinFrontDoor, quiet: bool = False) -> None:
        if quiet:  # its connections close with its listener: let their requests finish
            await settle(door, door.limits.upstream_read_timeout)
        await door.close()
        for listener in door.listeners:
            if listener.empty:
                if self.listeners.get(listener.port) is listener:
                    del self.listeners[listener.port]
                    self.sni.pop(listener.port, None)
                await listener.close()

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
        db = StateDB(self.layout.app(key.app).state_db)
        try:
            state = db.env_state(key.env)
        finally:
            db.close()
        if not state or not state.get("spec"):
            self.switch(key, 0, None, None)
            return None
        return await self._restore_env(key, state)

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
            "front_door": self._door_status(door),
        }

    @staticmethod
    def _door_status(door: BuiltinFrontDoor | None) -> dict[str, Any] | None:
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

    # restore after a restart -------------------------------------------------------------
    async def restore(self) -> None:
        """Start what state.db says serves each environment (after a server restart)."""
        try:
            await self._restore_all()
        finally:
            self.restored.set()

    async def _restore_all(self) -> None:
        for app in self.layout.app_names():
            try:
                db = StateDB(self.layout.app(app).state_db)
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
                    await self._restore_env(key, state)
                except (ShiplaneError, PortInUse, OSError, ValueError) as exc:
                    log.error("restoring %s failed: %s", key, exc)

    async def _restore_env(self, key: EnvKey, state: dict[str, Any]) -> str:
        # Records written before one server served several apps name no app: this one's.
        spec = InstanceSpec.from_stored(state["spec"]).model_copy(update={"app": key.app})
        if rebuild.needed(spec):
            log.warning("%s: release %s is not on disk; building it again", key, spec.release)
            await asyncio.to_thread(rebuild.rebuild, self.layout.app(key.app), spec)
        instance = await self.start_instance(spec)
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
        previous = self.switch(key, int(state["port"]), instance.id, info)
        self._record_instance(key, instance.id)
        await self.workers.replace(key, spec, grace=0)  # the serving release's workers too
        if previous and previous != instance.id:
            door = self.frontdoors[key]
            await door.drain(previous, spec.drain_timeout)
            await self.stop_instance(previous)
        return instance.id

    def _record_instance(self, key: EnvKey, instance_id: str) -> None:
        db = StateDB(self.layout.app(key.app).state_db)
        try:
            db.set_serving_instance(key.env, instance_id)
        finally:
            db.close()

    async def shutdown(self) -> None:
        await self.watches.close()
        await self.health.close()
        await self.standbys.close()
        for door in self.frontdoors.values():
            await door.close()
        for listener in self.listeners.values():
            await listener.close()
        await self.workers.close()
        await asyncio.gather(*(i.stop() for i in self.instances.values()), return_exceptions=True)
        self.instances.clear()
