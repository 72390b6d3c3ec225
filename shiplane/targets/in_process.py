"""The server's own operations reach its control API without a socket: a pipeline running in
the server (issue 9) asks its core to start, switch, drain and hold through the same routes a
client uses, handed to the server's event loop in-process. Each request saves a connection,
an HTTP parse on both sides and a new client: about a millisecond, a dozen times a deploy,
on the client-server hop the issue budgets at 20 ms.

``serve(app, loop, socket)`` is called once by the server; ``transport_for(socket)`` is then
an httpx transport for requests to that socket from any thread but the loop's own."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx

_served: tuple[Any, asyncio.AbstractEventLoop, Path, int] | None = None


def serve(app: Any, loop: asyncio.AbstractEventLoop, socket: Path) -> None:
    global _served
    _served = (app, loop, socket, threading.get_ident())


def transport_for(socket: Path) -> httpx.BaseTransport | None:
    """An in-process transport when this process serves ``socket`` and the caller is not the
    loop's thread (a request from there would wait on itself); None otherwise."""
    if _served is None:
        return None
    app, loop, served, loop_thread = _served
    if served != socket or threading.get_ident() == loop_thread or loop.is_closed():
        return None
    return _LoopTransport(app, loop)


class _LoopTransport(httpx.BaseTransport):
    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.asgi = httpx.ASGITransport(app=app)
        self.loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self.asgi.handle_async_request(request)
            body = await response.aread()
            return response.status_code, response.headers.raw, body

        timeouts = request.extensions.get("timeout") or {}
        wait = timeouts.get("read")
        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        try:
            status, headers, body = future.result(wait)
        except TimeoutError as exc:
            future.cancel()
            raise httpx.ReadTimeout("the server's core did not answer in time") from exc
        return httpx.Response(status, headers=headers, content=body, request=request)
