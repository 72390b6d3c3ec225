"""One front-door worker process (``front_door.workers = N``, N > 1): the same relay as the
single-process door, on a listening socket of its own that shares the address with the other
workers' (SO_REUSEPORT: the kernel spreads connections over them). After the number of
workers went down it serves several such sockets: closing one would reset the connections
queued on it.

The server owns the state and the sockets; a worker holds a copy of the state and nothing else.
It talks to the server over one Unix socketpair in JSON lines:

    server -> worker  {"op": "init", "env", "settings", "state"}   first, before any accept
                      {"op": "switch" | "hold" | "release" | "maintenance" | "drain", "seq", ...}
                      {"op": "answer", "id", "status", "payload"}   a /_deploy/* answer
                      {"op": "leave"}                              stop accepting, finish, exit
    worker -> server  {"ready": pid}
                      {"ack": seq, "result", "stats"}              after the change took effect
                      {"stats": {...}}                             when its counts changed
                      {"ask": id, "path", "client", "headers"}     a /_deploy/* request

A change is acknowledged only once applied, so a request read after the server's switch returned
goes to the new upstream. The worker leaves when told to, or when the socketpair closes (the
server died: nothing else holds the other end), after its in-flight requests finished (bounded).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.listener import Listener, reserve_descriptors
from shiplane.frontdoor.settings import DoorSettings
from shiplane.frontdoor.static import StaticFiles

LINE_LIMIT = 16 * 1024 * 1024  # a /_deploy/status answer can be long
STATS_EVERY = 0.02  # seconds between two looks at the counts
STOP_GRACE = 10.0  # seconds in-flight requests get when the worker leaves
# Seconds a connection waited for a request before a leaving worker closes it: long enough for
# a client that just connected on a loaded machine to send its first one.
IDLE_CLOSE = 1.0


def encode_upstream(upstream: Upstream | None) -> dict[str, Any] | None:
    if upstream is None:
        return None
    static = upstream.static
    return {
        "id": upstream.instance_id,
        "host": upstream.host,
        "port": upstream.port,
        "info": upstream.info,
        "static": None
        if static is None
        else {
            "mounts": [[prefix.decode(), root] for prefix, root in static.mounts],
            "max_age": static.max_age,
            "idle": static.idle_timeout,
        },
    }


def decode_upstream(data: Mapping[str, Any] | None) -> Upstream | None:
    if data is None:
        return None
    static = None
    if data["static"] is not None:
        mounts = {prefix: Path(root) for prefix, root in data["static"]["mounts"]}
        static = StaticFiles(mounts, int(data["static"]["max_age"]), float(data["static"]["idle"]))
    return Upstream(data["id"], data["host"], int(data["port"]), data["info"], static)


def counts(door: BuiltinFrontDoor) -> dict[str, Any]:
    """What the server sums over its workers (and shows per worker)."""
    stats = door.stats()
    return {
        "requests": stats.requests,
        "inflight": dict(stats.inflight),
        "waiting": stats.waiting,
        "held_timeouts": stats.held_timeouts,
        "tripped": dict(stats.tripped),
        "websockets": stats.websockets,
        "connections": stats.connections,
    }


class Link:
    """The worker's end of the socketpair: lines out, and /_deploy/* questions awaiting their
    answer."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.asked: dict[int, asyncio.Future[tuple[int, dict[str, Any]]]] = {}
        self._next = 0

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def ask(
        self, path: str, client: str, headers: Mapping[str, str], active: Upstream | None
    ) -> tuple[int, dict[str, Any]]:
        """A ``DeployHook``: the server answers, from its own state (``active`` is its)."""
        del active
        self._next += 1
        future: asyncio.Future[tuple[int, dict[str, Any]]]
        future = asyncio.get_running_loop().create_future()
        self.asked[self._next] = future
        self.send({"ask": self._next, "path": path, "client": client, "headers": dict(headers)})
        return await future

    def answered(self, message: Mapping[str, Any]) -> None:
        future = self.asked.pop(int(message["id"]), None)
        if future is not None and not future.done():
            future.set_result((int(message["status"]), message["payload"]))

    def gone(self) -> None:
        for future in self.asked.values():
            if not future.done():
                future.set_result((503, {"error": "the shiplane server is stopping"}))
        self.asked.clear()


def apply(door: BuiltinFrontDoor, message: Mapping[str, Any]) -> None:
    """Apply one change of state (or the whole state, in ``init``)."""
    op = message["op"]
    if op in ("switch", "init"):
        door.switch(decode_upstream(message["upstream"]))
    if op == "hold" or (op == "init" and message["held"]):
        door.hold(message["timeout"])
    if op == "release":
        door.release()
    if op in ("maintenance", "init"):
        door.maintenance(bool(message["on"]), message["bypass"])


async def drain(door: BuiltinFrontDoor, link: Link, message: Mapping[str, Any]) -> None:
    drained = await door.drain(message["instance"], float(message["timeout"]))
    link.send({"ack": message["seq"], "result": drained, "stats": counts(door)})


async def report(door: BuiltinFrontDoor, link: Link) -> None:
    """Send the counts whenever they changed: drain and hold sum them over the workers."""
    last: dict[str, Any] = {}
    while True:
        await asyncio.sleep(STATS_EVERY)
        now = counts(door)
        if now != last:
            link.send({"stats": now})
            last = now


async def run(control_fd: int, listen_fds: list[int]) -> None:
    reader, writer = await asyncio.open_unix_connection(
        sock=socket.socket(fileno=control_fd), limit=LINE_LIMIT
    )
    link = Link(writer)
    init = json.loads(await reader.readline())
    settings = DoorSettings.from_dict(init["settings"], int(init["settings"]["port"]))
    door = BuiltinFrontDoor(init["env"], settings.port, link.ask, settings=settings)
    apply(door, init)
    # Only now, with the state in place, does this worker take connections.
    budget = reserve_descriptors()  # as the server does for its own door
    for fd in listen_fds:
        sock = socket.socket(fileno=fd)
        host, port = sock.getsockname()[:2]
        listener = Listener(host, port, budget=budget, limits=door.limits)
        listener.add(door, ())
        door.attach(listener)
        await listener.start(sock)
    link.send({"ready": os.getpid()})
    reporter = asyncio.create_task(report(door, link))
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    # The pipe stays read while the worker leaves: a door replacing this one's keeps pushing
    # its changes here until the last connection of this worker closed.
    reading = asyncio.create_task(read(reader, door, link, stopping))
    await stopping.wait()
    await leave(door)
    reading.cancel()
    reporter.cancel()
    link.gone()


async def read(
    reader: asyncio.StreamReader, door: BuiltinFrontDoor, link: Link, stopping: asyncio.Event
) -> None:
    tasks: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        message = json.loads(line)
        op = message["op"]
        if op == "answer":
            link.answered(message)
        elif op == "leave":
            stopping.set()
        elif op == "drain":
            task = asyncio.create_task(drain(door, link, message))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        else:
            apply(door, message)
            link.send({"ack": message["seq"], "result": True, "stats": counts(door)})
    stopping.set()  # the server stopped (or died)


async def leave(door: BuiltinFrontDoor) -> None:
    """Stop accepting (the socket stays open in the server and the other workers), let the
    requests in flight finish and close each connection once it waits for the next one, then
    close what is left (bounded)."""
    for listener in door.listeners:
        listener.stop_accepting()
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline:
        for listener in door.listeners:
            # A connection just accepted may have its request on the way: give it a moment.
            listener.close_idle(IDLE_CLOSE)
        if not any(listener.open for listener in door.listeners):
            break
        await asyncio.sleep(0.02)
    await door.close()
    for listener in door.listeners:
        await listener.close()


def main() -> None:
    import uvloop

    # Ctrl-C reaches the whole process group: the server decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control_fd, *listen_fds = map(int, sys.argv[1:])
    uvloop.run(run(control_fd, listen_fds))


if __name__ == "__main__":
    main()
