"""App instances as child processes of the shiplane server (what the local target runs).

Each instance runs in its own process group (so stopping it stops its workers too) and gets
PR_SET_PDEATHSIG, so a server killed with SIGKILL does not leave orphans holding the database.
A crashed instance is restarted with exponential backoff until it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiplane.config.redact import Redactor
from shiplane.databases import resolve_url
from shiplane.procenv import child_environment, die_with_parent
from shiplane.targets.base import Address, Instance, InstanceSpec

MAX_BACKOFF = 30.0
# Instances listen on loopback only: the front door is their one way in.
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ManagedProcess:
    spec: InstanceSpec
    port: int
    secrets: dict[str, str]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    process: asyncio.subprocess.Process | None = None
    state: str = "starting"
    restarts: int = 0
    started_at: float = field(default_factory=time.time)
    _stopping: bool = False
    _watcher: asyncio.Task[None] | None = None
    _pumps: set[asyncio.Task[None]] = field(default_factory=set)

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

    async def _spawn(self, redact: Redactor) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command(),
            cwd=self.spec.release_dir,
            env=self.environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.state = "running"
        self._pumps.add(asyncio.create_task(self._pump_output(self.process, redact)))

    async def _pump_output(self, process: asyncio.subprocess.Process, redact: Redactor) -> None:
        assert process.stdout is not None
        path = Path(self.spec.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            while line := await process.stdout.readline():
                log.write(f"[{self.id}] " + redact(line.decode(errors="replace")))
                log.flush()

    async def _watch(self, redact: Redactor) -> None:
        backoff = 1.0
        while True:
            assert self.process is not None
            code = await self.process.wait()
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
            del code
            await self._spawn(redact)

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is None or process.returncode is not None:
            self.state = "stopped"
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=self.spec.stop_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        # Workers that ignored TERM must not outlive their group leader.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self.state = "stopped"
