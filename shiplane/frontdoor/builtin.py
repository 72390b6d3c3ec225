"""The built-in front door: one HTTP listener per environment, blue/green switch and drain.

The active upstream is one attribute, read once per request on the event loop, so a switch is
atomic: every request goes wholly to the old or wholly to the new instance. In-flight requests
are counted per instance; draining waits for an instance's count to reach zero.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from shiplane.frontdoor.http1 import MAX_HEAD, Pool, serve_connection

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
StatusProvider = Callable[[str], Awaitable[dict[str, Any]]]


class Upstream:
    def __init__(self, instance_id: str, port: int, info: dict[str, Any]) -> None:
        self.instance_id = instance_id
        self.port = port
        self.info = info


class FrontDoor:
    def __init__(
        self,
        env: str,
        port: int,
        token: str,
        status: StatusProvider,
        migrations: StatusProvider,
    ) -> None:
        self.env = env
        self.port = port
        self.token = token
        self.active: Upstream | None = None
        self.inflight: Counter[str] = Counter()
        self.switched_at: float | None = None
        self.requests = 0
        self._status = status
        self._migrations = migrations
        self.pool = Pool()
        self.server: asyncio.Server | None = None
        self._starting: asyncio.Task[None] | None = None

    def listen(self, sock: socket.socket) -> None:
        """Serve on an already bound and listening socket (connections wait in its backlog)."""

        async def start() -> None:
            self.server = await asyncio.start_server(
                lambda r, w: serve_connection(self, r, w), sock=sock, limit=MAX_HEAD
            )

        self._starting = asyncio.create_task(start())

    def switch(self, upstream: Upstream) -> Upstream | None:
        previous, self.active = self.active, upstream
        self.switched_at = time.time()
        return previous

    async def drain(self, instance_id: str, timeout: float) -> bool:
        """Wait until no request is in flight on ``instance_id``; False when the timeout hit."""
        deadline = time.monotonic() + timeout
        while self.inflight[instance_id] > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def close(self) -> None:
        if self._starting is not None:
            await self._starting
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.pool.close()

    def _trusted(self, client: str, headers: dict[str, str]) -> bool:
        if client in LOOPBACK:
            return True
        supplied = headers.get("x-shiplane-token", "")
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            supplied = bearer[7:]
        return bool(supplied) and hmac.compare_digest(supplied, self.token)

    async def deploy_endpoint(
        self, path: str, client: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """The /_deploy/* answers: (status, JSON body)."""
        name = path.removeprefix("/_deploy/").strip("/")
        active = self.active
        if name == "health":
            healthy = active is not None and active.info.get("state", "running") == "running"
            body = {"ok": healthy, "env": self.env, "sha": active.info["sha"] if active else None}
            return (200 if healthy else 503), body
        if name == "version":
            if active is None:
                return 503, {"env": self.env, "sha": None}
            keys = ("sha", "release", "deployed_at", "deployment_id")
            return 200, {"env": self.env, **{k: active.info.get(k) for k in keys}}
        if name in ("status", "migrations"):
            if not self._trusted(client, headers):
                return 401, {"error": "token required (X-Shiplane-Token) for non-loopback clients"}
            provider = self._status if name == "status" else self._migrations
            return 200, await provider(self.env)
        return 404, {"error": f"unknown endpoint /_deploy/{name}"}
