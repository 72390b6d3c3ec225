"""The built-in front door as N worker processes (``front_door.workers = N``, N > 1).

The server keeps the door's state (the active upstream with its static mounts, hold,
maintenance) in this object, which is a ``BuiltinFrontDoor`` that serves nothing itself. It binds
one listening socket per worker on the door's address with SO_REUSEPORT, so the kernel spreads
connections over the workers, and hands each to a worker process (``worker.py``) with the state.
A change (switch, hold, release, maintenance) is pushed to every worker; ``confirmed`` returns
once each worker applied it (or died: its replacement starts from the state as it is then).

Drain asks every worker to drain the instance and waits for all of them; the in-flight counts
that ``stats`` (and so the hold) sees are the sum of what the workers last reported, and a
worker reports after every change, so after a hold the sum only falls. /_deploy/* is asked of
the server over the same pipe. Each worker writes its access-log lines to the env's file
(O_APPEND: whole lines).

The sockets outlive the workers: a crashed worker is started again on the same socket (the
connections queued there wait for it), and a door replacing this one (the settings changed)
takes the sockets over (``hand_over``), so the address never stops listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shiplane.frontdoor.base import DeployHook, FrontDoorStats, Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.listener import Listener
from shiplane.frontdoor.settings import DoorSettings
from shiplane.frontdoor.worker import IDLE_CLOSE, LINE_LIMIT, encode_upstream
from shiplane.procenv import child_environment, die_with_parent

log = logging.getLogger("shiplane.frontdoor")
RESTART_BACKOFF = (0.1, 0.5, 2.0)  # seconds before starting a crashed worker again
CONFIRM_TIMEOUT = 10.0  # seconds a worker has to apply a change before it is restarted
STOP_TIMEOUT = 15.0  # a leaving worker's in-flight grace (worker.STOP_GRACE) and some


async def settle(door: BuiltinFrontDoor, timeout: float) -> None:
    """Wait (at most ``timeout`` s) until ``door`` has no request in flight."""
    deadline = time.monotonic() + timeout
    while any(door.stats().inflight.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def bind_reuseport(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port) that other sockets of this user may share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


@dataclass
class Worker:
    slot: int
    socks: list[socket.socket]
    pid: int | None = None
    restarts: int = 0  # since the door opened
    failing: int = 0  # exits in a row without running a while: the backoff step
    process: asyncio.subprocess.Process | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    writer: asyncio.StreamWriter | None = None
    acks: dict[int, asyncio.Future[Any]] = field(default_factory=dict)

    def send(self, message: dict[str, Any]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def gone(self) -> None:
        """The process ended: nothing it was asked will be answered, and it counts nothing."""
        self.writer = None
        self.pid = None
        self.counts = {}
        for future in self.acks.values():
            if not future.done():
                future.set_result(None)
        self.acks.clear()


class WorkerFrontDoor(BuiltinFrontDoor):
    def __init__(
        self,
        env: str,
        settings: DoorSettings,
        deploy_hook: DeployHook,
        previous: BuiltinFrontDoor | None = None,
    ) -> None:
        """Bind (now: "address in use" is the caller's error) and start the workers.

        ``previous``, the door this one replaces on the same port, keeps serving the
        connections it has while they last, so neither the address nor a connection is cut:
        a door with workers hands its sockets over and its leaving workers follow every change
        made here; a one-process door's listener hands its socket over and routes the requests
        left on its connections to this door, which relays them itself."""
        super().__init__(env, settings.port, deploy_hook, settings=settings)
        self._retiring: list[WorkerFrontDoor] = []
        self._seq = 0
        self._pending: dict[asyncio.Future[Any], Worker] = {}  # changes not yet confirmed
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sockets: list[socket.socket] = []
        if isinstance(previous, WorkerFrontDoor) and previous.port == self.port:
            self._sockets = previous.hand_over()
            self._retiring.append(previous)
        elif previous is not None:
            self._take_listener(previous)
        while len(self._sockets) < settings.workers:
            self._sockets.append(bind_reuseport(settings.host, self.port))
            self.port = self._sockets[0].getsockname()[1]  # port 0: what the first one got
        # Fewer workers than sockets (their number went down): some serve several.
        count = settings.workers
        self.workers = [Worker(n, self._sockets[n::count]) for n in range(count)]
        for worker in self.workers:
            self._spawn(self._supervise(worker))

    def _take_listener(self, previous: BuiltinFrontDoor) -> None:
        own = next((x for x in previous.listeners if x.port == self.port), None)
        taken = own.take_over() if own is not None else None
        if own is None or taken is None:
            return
        self._sockets.append(taken)
        own.remove(previous)
        own.add(self, ())
        self._spawn(self._let_go(own))

    async def _let_go(self, listener: Listener) -> None:
        """Close the handed-over listener's connections as each waits for a request (or at
        the idle timeout), then the listener."""
        deadline = time.monotonic() + self.limits.idle_timeout
        while listener.open and time.monotonic() < deadline and not self._closing:
            listener.close_idle(IDLE_CLOSE)
            await asyncio.sleep(0.05)
        listener.remove(self)
        await listener.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # supervision -------------------------------------------------------------------------
    async def _supervise(self, worker: Worker) -> None:
        while not self._closing:
            started = time.monotonic()
            try:
                await self._run(worker)
            except (OSError, ValueError) as exc:
                log.error("front door %s: worker %d failed: %s", self.env, worker.slot, exc)
            finally:
                worker.gone()
            if self._closing:
                return
            if time.monotonic() - started > 10:
                worker.failing = 0  # it ran a while: start again at once
            delay = RESTART_BACKOFF[min(worker.failing, len(RESTART_BACKOFF) - 1)]
            worker.failing += 1
            worker.restarts += 1
            log.warning("front door %s: worker %d exited; restarting", self.env, worker.slot)
            await asyncio.sleep(delay)

    async def _run(self, worker: Worker) -> None:
        ours, theirs = socket.socketpair()
        fds = (theirs.fileno(), *(sock.fileno() for sock in worker.socks))
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "shiplane.frontdoor.worker",
                *map(str, fds),
                pass_fds=fds,
                stdin=asyncio.subprocess.DEVNULL,
                env=child_environment(),
                preexec_fn=die_with_parent,
            )
        finally:
            theirs.close()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=ours, limit=LINE_LIMIT)
            # The state as it is now, then every change after it, in order, on the same pipe.
            worker.writer = writer
            worker.pid = process.pid
            worker.process = process
            settings = {**self.settings.to_dict(), "port": self.port}
            worker.send({**self._state(), "op": "init", "env": self.env, "settings": settings})
            await self._listen(worker, reader)
        finally:
            if worker.writer is not None:
                worker.writer.close()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    def _state(self) -> dict[str, Any]:
        return {
            "op": "state",
            "upstream": encode_upstream(self._active),
            "held": self._held,
            "timeout": self.hold_timeout,
            "on": self._maintenance,
            "bypass": self._bypass.decode() if self._bypass else None,
        }

    async def _listen(self, worker: Worker, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            message = json.loads(line)
            if "ack" in message:
                worker.counts = message["stats"]
                future = worker.acks.pop(int(message["ack"]), None)
                if future is not None and not future.done():
                    future.set_result(message["result"])
            elif "stats" in message:
                worker.counts = message["stats"]
            elif "ask" in message:
                self._spawn(self._answer(worker, message))

    async def _answer(self, worker: Worker, message: dict[str, Any]) -> None:
        try:
            status, payload = await self.deploy_hook()(
                message["path"], message["client"], message["headers"], self._active
            )
        except Exception:  # the worker's client gets an answer whatever went wrong here
            log.exception("front door %s: %s failed", self.env, message["path"])
            status, payload = 500, {"error": "the shiplane server failed to answer"}
        worker.send({"op": "answer", "id": message["ask"], "status": status, "payload": payload})

    # pushing changes ---------------------------------------------------------------------
    def _push(self, message: dict[str, Any], confirm: bool = True) -> list[asyncio.Future[Any]]:
        """Send ``message`` to every running worker; the futures resolve on their acks (those
        of a change of state are what ``confirmed`` waits for; a drain's are not)."""
        loop = asyncio.get_running_loop()
        futures = []
        for worker in self.workers:
            if worker.writer is None:
                continue  # starting: its init carries the state as it is when it starts
            self._seq += 1
            future: asyncio.Future[Any] = loop.create_future()
            worker.acks[self._seq] = future
            worker.send({**message, "seq": self._seq})
            futures.append(future)
            if confirm:
                self._pending[future] = worker
        return futures

    def _leaving(self) -> list[WorkerFrontDoor]:
        """The replaced doors whose workers still serve connections: they follow this one."""
        self._retiring = [door for door in self._retiring if door.workers_running()]
        return self._retiring

    def switch(self, upstream: Upstream | None) -> Upstream | None:
        previous = super().switch(upstream)
        self._push({"op": "switch", "upstream": encode_upstream(upstream)})
        for door in self._leaving():
            door.switch(upstream)
        return previous

    def hold(self, timeout: float | None = None) -> None:
        super().hold(timeout)
        self._push({"op": "hold", "timeout": self.hold_timeout})
        for door in self._leaving():
            door.hold(timeout)

    def release(self) -> None:
        super().release()
        self._push({"op": "release"})
        for door in self._leaving():
            door.release()

    def maintenance(self, on: bool, bypass: str | None = None) -> None:
        super().maintenance(on, bypass)
        self._push({"op": "maintenance", "on": on, "bypass": bypass if on else None})
        for door in self._leaving():
            door.maintenance(on, bypass)

    async def confirmed(self) -> None:
        """Every change so far applied by every worker. A worker that does not confirm in
        time is killed: its replacement starts from the state as it is now."""
        pending, self._pending = self._pending, {}
        if pending:
            _, late = await asyncio.wait(pending, timeout=CONFIRM_TIMEOUT)
            for future in late:
                worker = pending[future]
                log.error(
                    "front door %s: worker %d confirmed no change in %g s; restarting it",
                    self.env,
                    worker.slot,
                    CONFIRM_TIMEOUT,
                )
                worker.kill()
            await asyncio.gather(*late)  # resolved as each killed worker's pipe closes
        await asyncio.gather(*(door.confirmed() for door in self._leaving()))

    async def drain(self, instance_id: str, timeout: float) -> bool:
        """Drained once every worker (and this process, for a handed-over listener's
        connections, and the replaced doors' leaving workers) has none in flight there."""
        await self.confirmed()
        results = await asyncio.gather(
            super().drain(instance_id, timeout),
            *self._push({"op": "drain", "instance": instance_id, "timeout": timeout}, False),
            *(door.drain(instance_id, timeout) for door in self._leaving()),
        )
        return all(result is not False for result in results)

    # what the server reads ---------------------------------------------------------------
    def stats(self) -> FrontDoorStats:
        """The sums over the workers' last reports, this process's own relaying (a
        handed-over listener's connections) and the replaced doors still leaving."""
        own = super().stats()
        parts = [door.stats() for door in self._leaving()]
        reports = [w.counts for w in self.workers if w.counts]
        inflight: Counter[str] = Counter(own.inflight)
        tripped: Counter[str] = Counter(own.tripped)
        for report in reports:
            inflight.update(report["inflight"])
            tripped.update(report["tripped"])
        for part in parts:
            inflight.update(part.inflight)
            tripped.update(part.tripped)

        def total(name: str) -> int:
            mine = int(getattr(own, name)) + sum(int(getattr(p, name)) for p in parts)
            return mine + sum(int(r[name]) for r in reports)

        return FrontDoorStats(
            port=self.port,
            requests=total("requests"),
            inflight={k: v for k, v in inflight.items() if v},
            switched_at=self._switched_at,
            held=self._held,
            waiting=total("waiting"),
            held_timeouts=total("held_timeouts"),
            tripped=dict(tripped),
            websockets=total("websockets"),
            connections=total("connections"),
            maintenance=self._maintenance,
        )

    def workers_running(self) -> bool:
        return any(worker.writer is not None for worker in self.workers)

    def worker_status(self) -> list[dict[str, Any]]:
        return [
            {
                "pid": w.pid,
                "restarts": w.restarts,
                "requests": w.counts.get("requests", 0),
                "connections": w.counts.get("connections", 0),
            }
            for w in self.workers
        ]

    # leaving -----------------------------------------------------------------------------
    def hand_over(self) -> list[socket.socket]:
        """Give every listening socket to the door replacing this one (its workers stop
        accepting there as they leave). All of them: a socket closed while in the address's
        group would reset the connections queued on it."""
        self._closing = True  # replaced: a worker that exits now is not started again
        given, self._sockets = self._sockets, []
        return given

    async def close(self) -> None:
        """The workers stop accepting, finish their requests and exit (a door that replaced
        this one keeps pushing its changes to them meanwhile); past the bound they are killed."""
        self._closing = True
        for worker in self.workers:
            worker.send({"op": "leave"})
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            for worker in self.workers:
                if late and worker.process is not None and worker.process.returncode is None:
                    worker.process.kill()
            await asyncio.gather(*tasks, return_exceptions=True)
        for sock in self._sockets:  # not those handed over
            sock.close()
        self._sockets = []
        self.pool.close()
        if self.access is not None:
            self.access.close()
