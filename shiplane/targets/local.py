"""The local target: instances are child processes of this host's shiplane server, and each
environment's front door is the server's built-in proxy. Until operations move into the server
it speaks to it over the control socket; afterwards it wraps the server's core in-process."""

from __future__ import annotations

import socket
from typing import Any, ClassVar

from shiplane.errors import ConfigError, DeployFailedError, ServerError
from shiplane.layout import Layout
from shiplane.targets.base import ActiveUpstream, Instance, InstanceSpec
from shiplane.targets.control_client import ServerClient

# Where this host's front doors answer for clients on the same host.
LOOPBACK = "127.0.0.1"


class LocalTraffic:
    def __init__(self, client: ServerClient, env: str, port: int) -> None:
        self.client = client
        self.env = env
        self.port = port

    def active(self) -> ActiveUpstream:
        if self.client.ping() is None:
            return ActiveUpstream(instance_id=None)
        return ActiveUpstream.model_validate(self.client.request("GET", f"/envs/{self.env}/active"))

    def switch(self, instance_id: str | None, info: dict[str, Any] | None) -> str | None:
        self.client.ensure_running()
        body = {"instance_id": instance_id, "port": self.port, "info": info}
        try:
            answer = self.client.request("POST", f"/envs/{self.env}/switch", body)
        except ServerError as exc:
            raise DeployFailedError(exc.message) from exc
        previous: str | None = answer["previous"]
        return previous

    def drain(self, instance_id: str, timeout: float) -> bool:
        body = {"instance_id": instance_id, "timeout": timeout}
        drained: bool = self.client.request("POST", f"/envs/{self.env}/drain", body)["drained"]
        return drained

    def restore(self) -> str | None:
        self.client.ensure_running()
        restored: str | None = self.client.request("POST", f"/envs/{self.env}/restore")[
            "instance_id"
        ]
        return restored

    def url(self) -> str:
        return frontdoor_url(self.port)


def frontdoor_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


class LocalTarget:
    name: ClassVar[str] = "local"
    traffic_steps: ClassVar[frozenset[str]] = frozenset({"switch", "smoke", "drain"})

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.client = ServerClient(layout)

    def available(self) -> bool:
        return self.client.ping() is not None

    def describe(self) -> dict[str, Any]:
        info = self.client.ping()
        return {"running": info is not None, "pid": (info or {}).get("pid")}

    def preflight(self, env: str, port: int) -> None:
        """The env's port must be free, or be our own front door for this env."""
        if self.traffic(env, port).active().port == port:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))
            except OSError as exc:
                raise ConfigError(
                    f"environments.{env}.port = {port}: the port is in use by another program "
                    f"({exc.strerror})",
                    step="preflight",
                    next_action=f"stop what listens on {port} or choose another port for {env}",
                ) from exc

    def start(self, spec: InstanceSpec) -> Instance:
        self.client.ensure_running()
        answer = self.client.request("POST", "/instances", {"spec": spec.to_stored()})
        return Instance.model_validate(answer)

    def stop(self, instance_id: str) -> bool:
        if self.client.ping() is None:
            return False  # the server is gone, and with it every instance it owned
        stopped: bool = self.client.request("POST", f"/instances/{instance_id}/stop")["stopped"]
        return stopped

    def instance(self, instance_id: str) -> Instance | None:
        try:
            return Instance.model_validate(self.client.request("GET", f"/instances/{instance_id}"))
        except ServerError:
            return None

    def instances(self, env: str) -> list[Instance]:
        if self.client.ping() is None:
            return []
        answer = self.client.request("GET", f"/envs/{env}/instances")
        return [Instance.model_validate(item) for item in answer["instances"]]

    def traffic(self, env: str, port: int) -> LocalTraffic:
        return LocalTraffic(self.client, env, port)
