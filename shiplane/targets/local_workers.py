"""The local target's workers: the server's worker pool, over its control API."""

from __future__ import annotations

from typing import Any

from shiplane.targets.base import InstanceSpec
from shiplane.targets.control_client import ServerClient

# Seconds beyond the grace for starting the new workers and stopping the old ones.
ALLOWANCE = 120.0


class LocalProcesses:
    def __init__(self, client: ServerClient, app: str, env: str) -> None:
        self.client = client
        self.path = f"/apps/{app}/envs/{env}/workers"
        self.app = app

    def replace(self, spec: InstanceSpec, grace: float, fresh: bool = False) -> dict[str, Any]:
        self.client.ensure_running()
        mine = spec.model_copy(update={"app": self.app})
        body = {"spec": mine.to_stored(), "grace": grace, "fresh": fresh}
        answer: dict[str, Any] = self.client.request("POST", self.path, body, grace + ALLOWANCE)
        return answer

    def pause(self) -> list[str]:
        if self.client.ping() is None:
            return []  # no server: no workers either
        stopped: list[str] = self.client.request("POST", f"{self.path}/pause", {}, ALLOWANCE)[
            "stopped"
        ]
        return stopped

    def resume(self) -> list[str]:
        if self.client.ping() is None:
            return []
        started: list[str] = self.client.request("POST", f"{self.path}/resume", {}, ALLOWANCE)[
            "started"
        ]
        return started

    def scale(self, spec: InstanceSpec) -> dict[str, Any]:
        self.client.ensure_running()
        mine = spec.model_copy(update={"app": self.app})
        answer: dict[str, Any] = self.client.request(
            "POST", f"{self.path}/scale", {"spec": mine.to_stored()}, ALLOWANCE
        )
        return answer

    def listing(self) -> dict[str, Any]:
        if self.client.ping() is None:
            return {"workers": [], "paused": False, "counts": {}}
        answer: dict[str, Any] = self.client.request("GET", self.path)
        return answer
