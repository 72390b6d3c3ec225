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
        self, env: str, token: str, status: StatusProvider, migrations: StatusProvider
    ) -> None:
        self.env = env
        self.token = token
        self._status = status
        self._migrations = migrations

    async def answer(
        self, path: str, client: str, headers: Mapping[str, str], active: Upstream | None
    ) -> tuple[int, dict[str, Any]]:
        """A ``DeployHook``: (status, JSON body) for ``path`` (query string removed)."""
        name = path.removeprefix("/_deploy/").strip("/")
        if name == "health":
            healthy = active is not None and active.info.get("state", "running") == "running"
            body = {"ok": healthy, "env": self.env, "sha": active.info["sha"] if active else None}
            return (200 if healthy else 503), body
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
