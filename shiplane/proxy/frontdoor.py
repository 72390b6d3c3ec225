"""The built-in front door: one HTTP listener per environment, blue/green switch and drain.

The active upstream is one attribute, read once per request on the event loop, so a switch is
atomic: every request goes wholly to the old or wholly to the new instance. In-flight requests
are counted per instance; draining waits for an instance's count to reach zero.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "content-length", "host",
}  # fmt: skip
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
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
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(300.0, connect=5.0),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=64),
            follow_redirects=False,
        )

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
        await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.url.path.startswith("/_deploy/"):
            response = await self._deploy_endpoint(request)
        else:
            response = await self._proxy(request)
        await response(scope, receive, send)

    def _trusted(self, request: Request) -> bool:
        client = request.client.host if request.client else ""
        if client in LOOPBACK:
            return True
        supplied = request.headers.get("x-shiplane-token", "")
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            supplied = bearer[7:]
        return bool(supplied) and hmac.compare_digest(supplied, self.token)

    async def _deploy_endpoint(self, request: Request) -> Response:
        name = request.url.path.removeprefix("/_deploy/").strip("/")
        active = self.active
        if name == "health":
            healthy = active is not None and active.info.get("state", "running") == "running"
            body = {"ok": healthy, "env": self.env, "sha": active.info["sha"] if active else None}
            return JSONResponse(body, status_code=200 if healthy else 503)
        if name == "version":
            if active is None:
                return JSONResponse({"env": self.env, "sha": None}, status_code=503)
            keys = ("sha", "release", "deployed_at", "deployment_id")
            return JSONResponse({"env": self.env, **{k: active.info.get(k) for k in keys}})
        if name in ("status", "migrations"):
            if not self._trusted(request):
                return JSONResponse(
                    {"error": "token required (X-Shiplane-Token) for non-loopback clients"},
                    status_code=401,
                )
            provider = self._status if name == "status" else self._migrations
            return JSONResponse(await provider(self.env))
        return JSONResponse({"error": f"unknown endpoint /_deploy/{name}"}, status_code=404)

    async def _proxy(self, request: Request) -> Response:
        upstream = self.active
        if upstream is None:
            return JSONResponse(
                {"error": f"no release is serving environment {self.env!r} yet"}, status_code=503
            )
        self.requests += 1
        self.inflight[upstream.instance_id] += 1
        try:
            body = await request.body()
            headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
            client_host = request.client.host if request.client else ""
            headers += [
                ("host", request.headers.get("host", f"127.0.0.1:{self.port}")),
                ("x-forwarded-for", client_host),
                ("x-forwarded-proto", request.url.scheme),
                ("x-forwarded-host", request.headers.get("host", "")),
            ]
            url = httpx.URL(
                scheme="http",
                host="127.0.0.1",
                port=upstream.port,
                path=request.url.path,
            )
            if request.url.query:
                url = url.copy_with(query=request.url.query.encode())
            status, upstream_headers, content = await self._send(request.method, url, headers, body)
            response = Response(content=content, status_code=status)
            for key, value in upstream_headers:
                if key.lower() not in HOP_BY_HOP:
                    response.headers.append(key, value)
            return response
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"error": f"upstream {upstream.instance_id} failed: {type(exc).__name__}"},
                status_code=502,
            )
        finally:
            self.inflight[upstream.instance_id] -= 1

    async def _send(
        self, method: str, url: httpx.URL, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        # A pooled keep-alive connection the app closed while idle fails before the request is
        # sent (ConnectError: safe to retry for any method); RemoteProtocolError only for
        # idempotent methods, where sending twice does no harm.
        for attempt in (1, 2):
            request = self.client.build_request(method, url, headers=headers, content=body)
            try:
                response = await self.client.send(request, stream=True)
                try:
                    raw = b"".join([chunk async for chunk in response.aiter_raw()])
                finally:
                    await response.aclose()
                return response.status_code, response.headers.multi_items(), raw
            except httpx.ConnectError:
                if attempt == 2:
                    raise
            except httpx.RemoteProtocolError:
                if attempt == 2 or method not in IDEMPOTENT:
                    raise
        raise AssertionError("unreachable")
