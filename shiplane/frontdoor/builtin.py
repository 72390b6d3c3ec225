"""The built-in front door: one HTTP listener per environment, blue/green switch, drain and hold.

The active upstream is one attribute, read once per request on the event loop, so a switch is
atomic: every request goes wholly to the old or wholly to the new instance. In-flight requests
are counted per instance; draining waits for an instance's count to reach zero. A hold parks new
requests before they pick an upstream, so on release they go to whatever was switched in
meanwhile (kamal-proxy's pause).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from typing import Any

from shiplane.frontdoor.base import DeployHook, FrontDoor, FrontDoorStats, Upstream
from shiplane.frontdoor.http1 import MAX_HEAD, Refusal, Relay

HOLD_TIMEOUT = 30.0


class BuiltinFrontDoor(FrontDoor):
    def __init__(
        self,
        env: str,
        port: int,
        deploy_hook: DeployHook,
        hold_timeout: float = HOLD_TIMEOUT,
    ) -> None:
        self.env = env
        self.port = port
        self.hold_timeout = hold_timeout
        self._deploy_hook = deploy_hook
        self._active: Upstream | None = None
        self._inflight: Counter[str] = Counter()
        self._requests = 0
        self._switched_at: float | None = None
        self._held = False
        self._released = asyncio.Event()
        self._released.set()
        self._waiting = 0
        self._idle = Refusal(503, {"error": f"no release is serving {env} yet"})
        self._held_too_long = Refusal(
            503, {"error": f"{env} was held over {hold_timeout:g} s (a deploy is migrating)"}
        )
        # Loopback here is the door's own address, for requests that name no Host.
        self._relay = Relay(self, b"127.0.0.1:%d" % port)
        self._server: asyncio.Server | None = None
        self._starting: asyncio.Task[None] | None = None

    def listen(self, sock: socket.socket) -> None:
        """Serve on an already bound and listening socket (connections wait in its backlog)."""

        async def start() -> None:
            self._server = await asyncio.start_server(self._relay.serve, sock=sock, limit=MAX_HEAD)

        self._starting = asyncio.create_task(start())

    # FrontDoor ---------------------------------------------------------------------------
    def switch(self, upstream: Upstream | None) -> Upstream | None:
        previous, self._active = self._active, upstream
        self._switched_at = time.time()
        return previous

    def active(self) -> Upstream | None:
        return self._active

    async def drain(self, instance_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._inflight[instance_id] > 0:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def hold(self) -> None:
        self._held = True
        self._released.clear()

    def release(self) -> None:
        self._held = False
        self._released.set()

    def stats(self) -> FrontDoorStats:
        return FrontDoorStats(
            port=self.port,
            requests=self._requests,
            inflight={k: v for k, v in self._inflight.items() if v},
            switched_at=self._switched_at,
            held=self._held,
            waiting=self._waiting,
        )

    async def close(self) -> None:
        self.release()  # nobody waits out the bound for a door that is going away
        if self._starting is not None:
            await self._starting
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._relay.close()

    # Router (called by the transport for each request) -----------------------------------
    async def begin(self) -> Upstream | Refusal:
        if self._held and not await self._wait_for_release():
            return self._held_too_long
        upstream = self._active
        if upstream is None:
            return self._idle
        self._requests += 1
        self._inflight[upstream.instance_id] += 1
        return upstream

    def end(self, upstream: Upstream) -> None:
        self._inflight[upstream.instance_id] -= 1

    async def deploy_endpoint(
        self, path: str, client: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        return await self._deploy_hook(path, client, headers, self._active)

    async def _wait_for_release(self) -> bool:
        self._waiting += 1
        try:
            async with asyncio.timeout(self.hold_timeout):
                await self._released.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
