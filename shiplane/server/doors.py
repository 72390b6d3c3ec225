"""The server's front doors, one per (app, environment): opening one on its listeners (its own
port, a port shared by host name, HTTPS with ACME), replacing it when its settings change without
a gap in serving, and closing them all with the server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shiplane.frontdoor.acme_client import ChallengeResponder
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.endpoints import DeployEndpoints
from shiplane.frontdoor.https import DoorTls
from shiplane.frontdoor.listener import Listener, reserve_descriptors
from shiplane.frontdoor.settings import DoorSettings
from shiplane.frontdoor.tls import CertificateStore, SniContext
from shiplane.frontdoor.workers import WorkerFrontDoor, settle
from shiplane.layout import ServerLayout
from shiplane.server.claims import PortInUse, check_claims
from shiplane.server.envkey import EnvKey
from shiplane.state.db import StateDB
from shiplane.state.maintenance import MaintenanceStore


class FrontDoors:
    """The doors by env and the listeners they share by port; ``endpoints`` answers an env's
    ``/_deploy/...`` routes."""

    def __init__(
        self, layout: ServerLayout, endpoints: Callable[[EnvKey], DeployEndpoints]
    ) -> None:
        self.layout = layout
        self._endpoints = endpoints
        self.doors: dict[EnvKey, BuiltinFrontDoor] = {}
        self.listeners: dict[int, Listener] = {}
        # HTTPS: one SNI context per TLS listener (by port), one challenge map for every
        # plain-HTTP port a TLS door answers ACME on (tokens are unique), one store.
        self.sni: dict[int, SniContext] = {}
        self.challenges = ChallengeResponder()
        self._certs: CertificateStore | None = None
        # Raise the descriptor limit and cap client connections well below it, so a flood on
        # one front door leaves descriptors for the others and for the control socket.
        self.budget = reserve_descriptors()
        self._background: set[asyncio.Task[None]] = set()

    def door_settings(self, key: EnvKey, port: int, stored: dict[str, Any]) -> DoorSettings:
        """The door settings an instance's spec carries, with the access log under the env."""
        settings = DoorSettings.from_dict(stored, port)
        log = str(self.layout.app(key.app).logs(key.env) / "access.log")
        return replace(settings, access_log=log)

    def ensure(self, key: EnvKey, settings: DoorSettings | int) -> BuiltinFrontDoor:
        if isinstance(settings, int):
            settings = DoorSettings(port=settings)
        door = self.doors.get(key)
        if door is not None and door.settings == settings:
            return door
        check_claims(key, settings, self.doors)
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
        new.maintenance(*(door.maintenance_mode() if door else self.stored_maintenance(key)))
        if door is not None:
            new.switch(door.active())  # the settings changed in config; keep serving
            self._background.add(asyncio.create_task(self._retire(door)))
        # From here on, requests reach the new door.
        own.add(new, ())
        for joined in (shared, plain):
            if joined is not None:
                joined.add(new, settings.domains)
        self.doors[key] = new
        return new

    def _worker_door(
        self, key: EnvKey, door: BuiltinFrontDoor | None, settings: DoorSettings
    ) -> WorkerFrontDoor:
        """``front_door.workers`` > 1 (frontdoor/workers.py), or any number once the env had
        workers (until a restart): the old door hands its port over without a gap."""
        new = WorkerFrontDoor(key.env, settings, self._endpoints(key).answer, door)
        new.maintenance(*(door.maintenance_mode() if door else self.stored_maintenance(key)))
        if door is not None:
            new.switch(door.active())
            # A one-process door's requests finish before it closes (the workers' own leave).
            quiet = not isinstance(door, WorkerFrontDoor)
            self._background.add(asyncio.create_task(self._retire(door, quiet)))
        self.doors[key] = new
        return new

    def stored_maintenance(self, key: EnvKey) -> tuple[bool, str | None]:
        if not key.app or not self.layout.app(key.app).state_db.is_file():
            return False, None
        db = StateDB(self.layout.app(key.app).state_db)
        try:
            current = MaintenanceStore(db).current(key.env)
        finally:
            db.close()
        return current.enabled, current.bypass

    def certificate_store(self) -> CertificateStore:
        if self._certs is None:
            self._certs = CertificateStore(self.layout.certs)
        return self._certs

    def _listener(
        self, key: EnvKey, host: str, port: int, settings: DoorSettings, https: bool = False
    ) -> Listener:
        listener = self.listeners.get(port)
        if listener is not None:
            if (listener.ssl_context is not None) != https:
                # check_claims refuses this between doors; a door's own ports must differ.
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

    async def close(self) -> None:
        for door in self.doors.values():
            await door.close()
        for listener in self.listeners.values():
            await listener.close()
