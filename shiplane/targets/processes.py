"""App instances as child processes of the shiplane server (what the local target runs).

Each instance runs in its own process group (so stopping it stops its workers too) and gets
PR_SET_PDEATHSIG, so a server killed with SIGKILL does not leave orphans holding the database.
A crashed instance is restarted with exponential backoff until it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shlex
import signal
import socket
import threading
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shiplane.config.redact import Redactor
from shiplane.databases import resolve_url
from shiplane.errors import ShiplaneError
from shiplane.launch import launcher
from shiplane.launch.base import PIPE, STDOUT, Child, RunAs
from shiplane.logs_read import tail_bytes
from shiplane.logs_rotate import release_log, shared_log
from shiplane.procenv import child_environment
from shiplane.serversettings import PortRange
from shiplane.targets.base import Address, Instance, InstanceSpec
from shiplane.targets.health import HealthOutcome, HealthPolicy, probe_until_healthy
from shiplane.targets.output import quote_output

MAX_BACKOFF = 30.0
TAIL_BYTES = 256 * 1024
# Instances listen on loopback only: the front door is their one way in.
LOOPBACK = "127.0.0.1"


class PortsExhausted(ShiplaneError):
    exit_code = 3


def free_port(ports: PortRange | None = None, taken: Collection[int] = ()) -> int:
    """A port for a new instance: from the server's ``instance_ports`` when set (skipping
    ``taken``: ports of instances that may be restarting, hence not bound right now), else any
    the kernel hands out. Bound and released here: the app binds it next."""
    if ports is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port: int = sock.getsockname()[1]
            return port
    # From a random point, so instances started together do not race for the same port.
    start = random.randrange(ports.size)
    for offset in range(ports.size):
        candidate = ports.low + (start + offset) % ports.size
        if candidate in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, candidate))
            except OSError:
                continue
            return candidate
    raise PortsExhausted(
        f"no free port for a new instance in instance_ports {ports} ({ports.size} ports, all"
        " in use)",
        step="start",
        next_action="stop what holds them, or widen the range: shiplane server config"
        f" instance_ports={ports.low}-{min(65535, ports.high + max(ports.size, 100))}",
    )


@dataclass
class ManagedProcess:
    spec: InstanceSpec
    port: int
    secrets: dict[str, str]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    process: Child | None = None
    _exit: asyncio.Future[int] | None = None
    state: str = "starting"
    restarts: int = 0
    started_at: float = field(default_factory=time.time)
    _stopping: bool = False
    _watcher: asyncio.Task[None] | None = None
    # Set when the current process's output reached EOF (all of it is in the log).
    _output_done: threading.Event = field(default_factory=threading.Event)

    def as_instance(self) -> Instance:
        exited = self.process is not None and self.process.returncode is not None
        return Instance(
            id=self.id,
            env=self.spec.env,
            release=self.spec.release,
            sha=self.spec.sha,
            address=Address(host=LOOPBACK, port=self.port),
            state=self.state,
            log_path=self.spec.log_path,
            exited=exited,
            pid=self.process.pid if self.process else None,
            restarts=self.restarts,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.spec.env,
            "release": self.spec.release,
            "sha": self.spec.sha,
            "port": self.port,
            "pid": self.process.pid if self.process else None,
            "state": self.state,
            "restarts": self.restarts,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    def command(self) -> list[str]:
        run = self.spec.run.replace("{port}", str(self.port)).replace("{host}", LOOPBACK)
        return shlex.split(run)

    def environment(self) -> dict[str, str]:
        own = {
            "PORT": str(self.port),
            "SHIPLANE_ENV": self.spec.env,
            "SHIPLANE_SHA": self.spec.sha,
            "SHIPLANE_RELEASE": self.spec.release,
        }
        if self.spec.database_url:
            own["DATABASE_URL"] = resolve_url(self.spec.database_url, self.secrets)
        return child_environment(self.spec.variables, self.secrets, own)

    async def start(self, redact: Redactor) -> None:
        self._stopping = False
        await self._spawn(redact)
        self._watcher = asyncio.create_task(self._watch(redact))

    def run_as(self) -> RunAs | None:
        return RunAs(self.spec.app, self.spec.env) if self.spec.app else None

    async def _spawn(self, redact: Redactor) -> None:
        child = await asyncio.to_thread(
            launcher().spawn,
            self.command(),
            run_as=self.run_as(),
            cwd=self.spec.release_dir,
            env=self.environment(),
            stdout=PIPE,
            stderr=STDOUT,
        )
        self.process = child
        self._exit = _exit_future(child)
        self.state = "running"
        self._output_done = done = threading.Event()
        threading.Thread(
            target=self._pump_output,
            args=(child, redact, done),
            name=f"log-{self.id}",
            daemon=True,
        ).start()

    def _pump_output(self, child: Child, redact: Redactor, done: threading.Event) -> None:
        # A thread, not the event loop: the pipe may come from the broker as a plain file.
        # The server is the log's one writer, so it rotates it between two lines and the app
        # never waits on that (shiplane.logs_rotate).
        assert child.stdout is not None
        path = Path(self.spec.log_path)
        log = shared_log(path, self.spec.log_rotation)
        prefix = f"[{self.id}] "
        try:
            with child.stdout as output:
                for line in output:
                    text = prefix + redact(line.decode(errors="replace"))
                    log.write(text.encode())
        finally:
            release_log(path)
            done.set()

    async def wait_healthy(self, path: str, policy: HealthPolicy) -> HealthOutcome:
        """Probe this instance until healthy; its exit ends the wait at once, and the outcome
        then quotes the end of its output (where the app's traceback is)."""
        outcome = await probe_until_healthy(
            self.as_instance().address.url(path), policy, self._exit
        )
        if outcome.exit_code is None:
            return outcome
        return replace(outcome, output=await self.final_output())

    def exited(self) -> asyncio.Future[int]:
        """Resolved with the exit status of the process running now."""
        assert self._exit is not None, "not started"
        return self._exit

    async def final_output(self) -> str:
        """What to quote of an exited process's output (its traceback first)."""
        # The exit can be seen before the pipe's last lines reach the log: wait for EOF,
        # bounded (a worker that inherited the pipe may hold it open).
        done = self._output_done
        deadline = time.monotonic() + 1.0
        while not done.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return quote_output(await asyncio.to_thread(self.last_output))

    def last_output(self) -> list[str]:
        """This instance's last lines of output (the log is shared by every instance of the
        release; each line carries its instance's id)."""
        prefix = f"[{self.id}] "
        try:
            # The end is enough (across a rotation that just happened).
            text = tail_bytes(Path(self.spec.log_path), TAIL_BYTES)[0].decode(errors="replace")
        except OSError:
            return []
        return [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]

    async def _watch(self, redact: Redactor) -> None:
        backoff = 1.0
        while True:
            assert self._exit is not None
            await asyncio.shield(self._exit)
            if self._stopping:
                self.state = "stopped"
                return
            self.state = "crashed"
            self.restarts += 1
            await asyncio.sleep(backoff)
            if self._stopping:
                self.state = "stopped"
                return
            backoff = min(backoff * 2, MAX_BACKOFF)
            await self._spawn(redact)

    async def stop(self) -> None:
        self._stopping = True
        child, exited = self.process, self._exit
        if child is None or exited is None or child.returncode is not None:
            self.state = "stopped"
            return
        await asyncio.to_thread(child.signal_group, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(exited), timeout=self.spec.stop_timeout)
        except TimeoutError:
            await asyncio.to_thread(child.signal_group, signal.SIGKILL)
            await exited
        # Workers that ignored TERM must not outlive their group leader.
        await asyncio.to_thread(child.signal_group, signal.SIGKILL)
        self.state = "stopped"


def _exit_future(child: Child) -> asyncio.Future[int]:
    """Resolved with the child's exit status. A thread of its own per child waits for it: an
    instance lives for days, and the loop's default executor has a handful of threads."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()

    def settle(code: int) -> None:
        if not future.done():
            future.set_result(code)

    def wait() -> None:
        code = child.wait()
        with contextlib.suppress(RuntimeError):  # the loop closed first: nobody waits
            loop.call_soon_threadsafe(settle, code)

    threading.Thread(target=wait, name=f"wait-{child.pid}", daemon=True).start()
    return future
