"""The local target: instances are child processes of this host's shiplane server, and each
environment's front door is the server's built-in proxy. Until operations move into the server
it speaks to it over the control socket; afterwards it wraps the server's core in-process."""

from __future__ import annotations

import socket
from typing import Any, ClassVar

from shiplane.errors import ConfigError, DeployFailedError, ServerError
from shiplane.layout import Layout
from shiplane.targets.base import ActiveUpstream, Instance, InstanceSpec, StandbyClaim
from shiplane.targets.control_client import ServerClient
from shiplane.targets.health import HealthOutcome, HealthPolicy
from shiplane.targets.local_workers import LocalProcesses

# Where this host's front doors answer for clients on the same host.
LOOPBACK = "127.0.0.1"
# Seconds beyond a drain's own timeout for stopping the drained instance (its stop_timeout,
# then SIGKILL).
STOP_ALLOWANCE = 120.0


class LocalTraffic:
    def __init__(self, client: ServerClient, app: str, env: str, port: int) -> None:
        self.client = client
        self.path = f"/apps/{app}/envs/{env}"
        self.port = port

    def active(self) -> ActiveUpstream:
        if self.client.ping() is None:
            return ActiveUpstream(instance_id=None)
        return ActiveUpstream.model_validate(self.client.request("GET", f"{self.path}/active"))

    def switch(self, instance_id: str | None, info: dict[str, Any] | None) -> str | None:
        self.client.ensure_running()
        body = {"instance_id": instance_id, "port": self.port, "info": info}
        try:
            answer = self.client.request("POST", f"{self.path}/switch", body)
        except ServerError as exc:
            raise DeployFailedError(exc.message) from exc
        previous: str | None = answer["previous"]
        return previous

    def drain(self, instance_id: str, timeout: float, standby: float | None = None) -> bool:
        body = {"instance_id": instance_id, "timeout": timeout, "standby": standby}
        # Answered when the drain and the stop are over: give it both and more.
        wait = timeout + STOP_ALLOWANCE
        drained: bool = self.client.request("POST", f"{self.path}/drain", body, wait)["drained"]
        return drained

    def drain_later(
        self, instance_id: str, timeout: float, deployment_id: str, standby: float | None = None
    ) -> None:
        body = {
            "instance_id": instance_id,
            "timeout": timeout,
            "background": True,
            "deployment_id": deployment_id,
            "standby": standby,
        }
        self.client.request("POST", f"{self.path}/drain", body)

    def claim_standby(self, spec: InstanceSpec) -> StandbyClaim:
        if self.client.ping() is None:
            return StandbyClaim(reason="the server is not running")
        body = {"spec": spec.to_stored()}
        # Bounded by a drain still ending there (the standby-to-be) and one probe.
        answer = self.client.request("POST", f"{self.path}/standby/claim", body)
        return StandbyClaim.model_validate(answer)

    def keep_standby(self, instance_id: str, ttl: float) -> bool:
        if self.client.ping() is None:
            return False
        body = {"instance_id": instance_id, "ttl": ttl}
        kept: bool = self.client.request("POST", f"{self.path}/standby/keep", body)["kept"]
        return kept

    def hold(self, timeout: float) -> bool:
        answer = self.client.request("POST", f"{self.path}/hold", {"timeout": timeout})
        settled: bool = answer["settled"]
        return settled

    def release(self) -> None:
        self.client.request("POST", f"{self.path}/release", {})

    def maintenance(self, on: bool, bypass: str | None) -> bool:
        body = {"on": on, "bypass": bypass}
        applied: bool = self.client.request("POST", f"{self.path}/maintenance", body)["applied"]
        return applied

    def restore(self) -> str | None:
        self.client.ensure_running()
        restored: str | None = self.client.request("POST", f"{self.path}/restore")["instance_id"]
        return restored

    def url(self) -> str:
        return frontdoor_url(self.port)


def frontdoor_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


class LocalTarget:
    name: ClassVar[str] = "local"
    traffic_steps: ClassVar[frozenset[str]] = frozenset({"switch", "smoke", "drain"})

    def __init__(self, layout: Layout) -> None:
        self.app = layout.app
        self.client = ServerClient(layout.server)

    def available(self) -> bool:
        return self.client.ping() is not None

    def describe(self) -> dict[str, Any]:
        info = self.client.ping()
        return {"running": info is not None, "pid": (info or {}).get("pid")}

    def runtime(self, env: str) -> dict[str, Any]:
        if self.client.ping() is None:
            return {}
        envs = self.client.request("GET", "/status").get("apps", {}).get(self.app, {})
        status = envs.get(env) or {}
        return {k: status.get(k) for k in ("standby", "memory", "connections")}

    def preflight(self, env: str, port: int, domains: tuple[str, ...] = ()) -> None:
        """The env's port must be free, or be our own front door for this env; its domains
        must be nobody else's."""
        if domains:
            self._domains_free(env, domains)
        if self.traffic(env, port).active().port == port:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))
            except OSError as exc:
                owner = self._port_owner(port)
                holder = f"the front door of {owner}" if owner else "another program"
                raise ConfigError(
                    f"environments.{env}.port = {port}: the port is in use by {holder} "
                    f"({exc.strerror})",
                    step="preflight",
                    next_action=f"stop what listens on {port} or choose another port for {env}",
                ) from exc

    def _domains_free(self, env: str, domains: tuple[str, ...]) -> None:
        """Refuse a domain another env of this server claimed (the server refuses it too)."""
        if self.client.ping() is None:
            return
        for app, envs in self.client.request("GET", "/status").get("apps", {}).items():
            for name, status in envs.items():
                door = status.get("front_door") or {}
                if (app, name) == (self.app, env):
                    continue
                taken = set(domains) & set(door.get("domains", []))
                if taken:
                    raise ConfigError(
                        f"environments.{env}.domains: {sorted(taken)[0]} is already claimed by "
                        f"{app}/{name}",
                        step="preflight",
                        next_action=f"give {env} its own domain names",
                    )

    def _port_owner(self, port: int) -> str | None:
        """Which app/env of this host's server holds ``port`` (one server serves every app)."""
        if self.client.ping() is None:
            return None
        apps = self.client.request("GET", "/status").get("apps", {})
        return next(
            (
                f"{app}/{env}"
                for app, envs in apps.items()
                for env, status in envs.items()
                if status.get("port") == port
            ),
            None,
        )

    def start(self, spec: InstanceSpec) -> Instance:
        self.client.ensure_running()
        mine = spec.model_copy(update={"app": self.app})
        answer = self.client.request("POST", "/instances", {"spec": mine.to_stored()})
        return Instance.model_validate(answer)

    def wait_healthy(self, instance: Instance, path: str, policy: HealthPolicy) -> HealthOutcome:
        body = {"path": path, "policy": policy.to_dict()}
        # The server answers when the wait ends: give it the whole health timeout and more.
        timeout = policy.timeout + policy.request_timeout + 30
        answer = self.client.request("POST", f"/instances/{instance.id}/health", body, timeout)
        return HealthOutcome.from_dict(answer)

    def stop(self, instance_id: str) -> bool:
        if self.client.ping() is None:
            return False  # the server is gone, and with it every instance it owned
        stopped: bool = self.client.request("POST", f"/instances/{instance_id}/stop")["stopped"]
        return stopped

    def instances(self, env: str) -> list[Instance]:
        if self.client.ping() is None:
            return []
        answer = self.client.request("GET", f"/apps/{self.app}/envs/{env}/instances")
        return [Instance.model_validate(item) for item in answer["instances"]]

    def traffic(self, env: str, port: int) -> LocalTraffic:
        return LocalTraffic(self.client, self.app, env, port)

    def processes(self, env: str) -> LocalProcesses:
        return LocalProcesses(self.client, self.app, env)
