"""The /_deploy/* answers, served beside the proxy whatever the front door is.

health and version are public; status and migrations say what runs and what the database holds,
so they need the server token, from loopback too: on a shared host "loopback" is every local
user and every app, and behind a reverse proxy on the same machine it is every client.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from shiplane.frontdoor.base import Upstream

VERSION_KEYS = ("sha", "release", "deployed_at", "deployment_id")
StatusProvider = Callable[[str], Awaitable[dict[str, Any]]]
# The serving instance's health as the server's monitor saw it (None: no such instance).
HealthProvider = Callable[[str], Awaitable[dict[str, Any] | None]]


def trusted(client: str, headers: Mapping[str, str], token: str) -> bool:
    """A client that presents the token (X-Shiplane-Token or a bearer), wherever it is."""
    del client  # where a request comes from proves nothing
    supplied = headers.get("x-shiplane-token", "")
    bearer = headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        supplied = bearer[7:]
    return bool(supplied) and hmac.compare_digest(supplied, token)


class DeployEndpoints:
    def __init__(
        self,
        env: str,
        token: str,
        status: StatusProvider,
        migrations: StatusProvider,
        health: HealthProvider | None = None,
    ) -> None:
        self.env = env
        self.token = token
        self._status = status
        self._migrations = migrations
        self._health = health

    async def answer(
        self, path: str, client: str, headers: Mapping[str, str], active: Upstream | None
    ) -> tuple[int, dict[str, Any]]:
        """A ``DeployHook``: (status, JSON body) for ``path`` (query string removed)."""
        name = path.removeprefix("/_deploy/").strip("/")
        if name == "health":
            return await self._health_answer(active)
        if name == "version":
            if active is None:
                return 503, {"env": self.env, "sha": None}
            return 200, {"env": self.env, **{k: active.info.get(k) for k in VERSION_KEYS}}
        if name in ("status", "migrations"):
            if not trusted(client, headers, self.token):
                return 401, {
                    "error": "token required (X-Shiplane-Token: the server's server.token)"
                }
            provider = self._status if name == "status" else self._migrations
            return 200, await provider(self.env)
        return 404, {"error": f"unknown endpoint /_deploy/{name}"}

    async def _health_answer(self, active: Upstream | None) -> tuple[int, dict[str, Any]]:
        """200 only when the serving instance answered its own health route on the monitor's
        last probe; 503 with the state (crashed, unhealthy since T, restarts) otherwise."""
        if active is None:
            return 503, {"ok": False, "env": self.env, "sha": None, "state": "no release"}
        body: dict[str, Any] = {"ok": True, "env": self.env, "sha": active.info.get("sha")}
        if self._health is not None:  # without a server behind it a door knows only its route
            health = await self._health(active.instance_id)
            health = health or {"state": "unknown", "healthy": False}  # not an instance it runs
            body["ok"] = bool(health["healthy"])
            body.update({k: v for k, v in health.items() if k != "healthy"})
        return (200 if body["ok"] else 503), body
