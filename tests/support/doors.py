"""A built-in front door served by an event loop in a thread (or a child process), so tests can
drive it with plain blocking clients; and a keep-alive HTTP/1.1 upstream written on the stdlib.

The upstream is an HTTP implementation that is not the door's own: ThreadingHTTPServer with
HTTP/1.1 keep-alive, which answers ``Expect: 100-continue`` by itself."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.endpoints import DeployEndpoints
from shiplane.frontdoor.listener import Listener
from shiplane.frontdoor.settings import DoorSettings, Limits

TOKEN = "t0ken-for-tests"
T = TypeVar("T")


class Backlogged(ThreadingHTTPServer):
    request_queue_size = 1024  # the stdlib's 5 drops bursts of connections (SYN retries)


class KeepAliveApp:
    """Answers with its name and what it was asked, on kept-alive connections.

    GET /id/X -> "name:X"; POST /echo/X -> 201 "name:X:<length>:<sha256 prefix>" (the body is
    read as it streams, never kept); /204, /304; GET /chunked/N -> N chunks; /slow waits for
    ``gate``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests = 0
        self.gate = threading.Event()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _read_body(self) -> tuple[int, str]:
                digest, total = hashlib.sha256(), 0
                if "chunked" in self.headers.get("transfer-encoding", ""):
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass
                            break
                        data = self.rfile.read(size)
                        self.rfile.read(2)
                        digest.update(data)
                        total += len(data)
                else:
                    left = int(self.headers.get("content-length", 0))
                    while left:
                        data = self.rfile.read(min(left, 1 << 16))
                        if not data:
                            break
                        digest.update(data)
                        total += len(data)
                        left -= len(data)
                return total, digest.hexdigest()[:12]

            def do_GET(self) -> None:
                app.requests += 1
                if self.path == "/slow":
                    app.gate.wait(20)
                if self.path == "/204":
                    self.send_response(204)
                    self.end_headers()
                    return
                if self.path == "/304":
                    self.send_response(304)
                    self.send_header("etag", '"x"')
                    self.end_headers()
                    return
                if self.path.startswith("/chunked/"):
                    self.send_response(200)
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for i in range(int(self.path.rsplit("/", 1)[1])):
                        piece = f"{app.name}-{i};".encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = json.dumps(
                    {"name": app.name, "path": self.path, "headers": headers}
                ).encode()
                self._send(200, body, {"content-type": "application/json"})

            do_HEAD = do_GET

            def do_POST(self) -> None:
                app.requests += 1
                total, digest = self._read_body()
                ident = self.path.rsplit("/", 1)[-1]
                self._send(201, f"{app.name}:{ident}:{total}:{digest}".encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Backlogged(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.upstream = Upstream(name, "127.0.0.1", self.port, {"sha": name})

    @contextmanager
    def running(self) -> Iterator[KeepAliveApp]:
        thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.gate.set()
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)


async def no_status(env: str) -> dict[str, Any]:
    return {"env": env}


class DoorThread:
    """An event loop in a thread serving doors; ``call`` runs a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def do(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self.call(run())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


@contextmanager
def door_thread(
    limits: Limits | None = None, env: str = "dev", **settings: Any
) -> Iterator[tuple[DoorThread, BuiltinFrontDoor]]:
    """One door on its own listener on a free port, in a loop thread."""
    runner = DoorThread()
    sock = bound_socket()
    port = sock.getsockname()[1]
    door_settings = DoorSettings(port=port, limits=limits or Limits(), **settings)

    async def make() -> BuiltinFrontDoor:
        endpoints = DeployEndpoints(env, TOKEN, no_status, no_status)
        door = BuiltinFrontDoor(env, port, endpoints.answer, settings=door_settings)
        door.listen(sock)
        return door

    door = runner.call(make())
    try:
        yield runner, door
    finally:
        runner.call(door.close())
        runner.stop()


@contextmanager
def shared_listener(
    names: dict[str, tuple[str, ...]],
) -> Iterator[tuple[DoorThread, int, dict[str, BuiltinFrontDoor]]]:
    """Several doors on one listener, each answering its domains."""
    runner = DoorThread()
    sock = bound_socket()
    port = sock.getsockname()[1]

    async def make() -> tuple[Listener, dict[str, BuiltinFrontDoor]]:
        listener = Listener("127.0.0.1", port)
        doors = {}
        for env, domains in names.items():
            endpoints = DeployEndpoints(env, TOKEN, no_status, no_status)
            settings = DoorSettings(port=port, domains=domains)
            door = BuiltinFrontDoor(env, port, endpoints.answer, settings=settings)
            door.attach(listener)
            listener.add(door, domains)
            doors[env] = door
        await listener.start(sock)
        return listener, doors

    listener, doors = runner.call(make())
    try:
        yield runner, port, doors
    finally:

        async def close() -> None:
            for door in doors.values():
                await door.close()
            await listener.close()

        runner.call(close())
        runner.stop()


def main() -> None:
    """A door in its own process: ``python -m tests.support.doors UPSTREAM_PORT MAX_BODY``;
    prints its port, serves until stdin closes. Lets a test measure the door's memory alone."""
    upstream_port, max_body = int(sys.argv[1]), int(sys.argv[2])
    with door_thread(Limits(max_body=max_body)) as (runner, door):
        runner.do(lambda: door.switch(Upstream("blue", "127.0.0.1", upstream_port, {})))
        print(door.port, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
