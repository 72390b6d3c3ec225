"""Serving an ASGI app on a socket we bound ourselves, many per event loop.

uvicorn installs process signal handlers in ``serve()``; with several servers in one loop the
shiplane server handles signals itself, so they are switched off here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Listener:
    def __init__(self, app: Any, sock: socket.socket, http: Any = "auto") -> None:
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            http=http,
        )
        self.server = _QuietServer(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def tcp_socket(port: int, host: str = "0.0.0.0") -> socket.socket:
    """Bind now, so "port in use" is an error the caller sees, not a log line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(1024)
    sock.set_inheritable(False)
    return sock


def unix_socket(path: Path, mode: int = 0o600) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    path.chmod(mode)
    sock.listen(128)
    return sock
