"""Every environment's worker processes (the process types of ``[processes]`` but web).

Workers serve no traffic, so they are not blue/green: the new release's start after the
switch, must stay up ``worker_grace`` seconds, and only then do the old ones get SIGTERM (and
SIGKILL after their stop timeout). A new worker that exits within the grace fails its deploy
while the old workers still run. Each is a ``ManagedProcess``, supervised like a web
instance: restarted with backoff when it crashes. A hold with a schema change or a checked
restore pauses them (a worker writing while the schema or the data changes under it is the
data-safety issue) and resumes them afterwards.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shiplane.config.redact import Redactor
from shiplane.targets.base import InstanceSpec
from shiplane.targets.processes import ManagedProcess

# Prepares an env for a process of ``spec`` and returns its secrets (the server core's).
Prepare = Callable[[InstanceSpec], Awaitable[dict[str, str]]]
Key = tuple[str, str]  # (app, env)


class WorkerStartError(OSError):
    def __init__(self, process: str, cause: OSError) -> None:
        super().__init__(f"worker {process!r} could not start: {cause.strerror or cause}")
        self.process = process


@dataclass
class EnvWorkers:
    spec: InstanceSpec | None = None  # what should run: release, commands, counts
    running: list[ManagedProcess] = field(default_factory=list)
    paused: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WorkerPool:
    def __init__(self, prepare: Prepare, redactor: Redactor) -> None:
        self.prepare = prepare
        self.redactor = redactor
        self.envs: dict[Key, EnvWorkers] = {}

    def _env(self, key: Key) -> EnvWorkers:
        return self.envs.setdefault(key, EnvWorkers())

    async def _start(self, spec: InstanceSpec, name: str) -> ManagedProcess:
        worker = spec.workers[name]
        own = spec.model_copy(update={"process": name, "run": worker.run, "workers": {}})
        secrets = await self.prepare(own)
        # No port: a worker serves no traffic ({port} in its command would be a mistake).
        process = ManagedProcess(spec=own, port=0, secrets=secrets)
        await process.start(self.redactor)
        return process

    async def _start_counts(
        self, spec: InstanceSpec, counts: dict[str, int]
    ) -> list[ManagedProcess]:
        """Start ``counts`` workers, or none: one that cannot start stops the others."""
        started: list[ManagedProcess] = []
        for name, count in counts.items():
            for _ in range(count):
                try:
                    started.append(await self._start(spec, name))
                except OSError as exc:
                    await asyncio.gather(*(p.stop() for p in started))
                    raise WorkerStartError(name, exc) from exc
        return started

    async def replace(
        self, key: Key, spec: InstanceSpec, grace: float, fresh: bool = False
    ) -> dict[str, Any]:
        state = self._env(key)
        async with state.lock:
            if not fresh and _same_set(state.spec, spec) and not state.paused:
                # Already what runs (an undo that finds the old workers kept): counts only.
                await self._reconcile(state, spec)
                return {"ok": True, "started": [], "stopped": [], "kept": True}
            try:
                new = await self._start_counts(spec, _counts(spec))
            except WorkerStartError as exc:
                unstarted = {"process": exc.process, "exit_code": None, "seconds": 0.0}
                return {"ok": False, "failed": {**unstarted, "output": str(exc)}}
            failed = await _first_exit(new, grace)
            if failed is not None:
                await asyncio.gather(*(p.stop() for p in new))
                return {"ok": False, "failed": failed}
            old, state.running = state.running, new
            state.spec, state.paused = spec, False
            await asyncio.gather(*(p.stop() for p in old))
            return {
                "ok": True,
                "started": [p.id for p in new],
                "stopped": [p.id for p in old],
                "kept": False,
            }

    async def pause(self, key: Key) -> list[str]:
        state = self._env(key)
        async with state.lock:
            stopped, state.running = state.running, []
            await asyncio.gather(*(p.stop() for p in stopped))
            if state.spec is not None and state.spec.workers:
                state.paused = True
            return [p.id for p in stopped]

    async def resume(self, key: Key) -> list[str]:
        state = self._env(key)
        async with state.lock:
            if not state.paused or state.spec is None:
                return []
            state.paused = False
            spec = state.spec
            state.running = await self._start_counts(spec, _counts(spec))
            return [p.id for p in state.running]

    async def scale(self, key: Key, spec: InstanceSpec) -> list[dict[str, Any]]:
        """Run ``spec``'s counts (the serving release's, scaled): start or stop the
        difference; paused workers take the counts when they resume."""
        state = self._env(key)
        async with state.lock:
            state.spec = spec
            if not state.paused:
                await self._reconcile(state, spec)
            return self.describe(key)

    async def _reconcile(self, state: EnvWorkers, spec: InstanceSpec) -> None:
        state.spec = spec
        keep: list[ManagedProcess] = []
        surplus: list[ManagedProcess] = []
        for name, worker in spec.workers.items():
            mine = [p for p in state.running if p.spec.process == name]
            keep += mine[: worker.count]
            surplus += mine[worker.count :]
            missing = {name: worker.count - len(mine)} if len(mine) < worker.count else {}
            keep += await self._start_counts(spec, missing)
        surplus += [p for p in state.running if p.spec.process not in spec.workers]
        state.running = keep
        await asyncio.gather(*(p.stop() for p in surplus))

    def describe(self, key: Key) -> list[dict[str, Any]]:
        state = self.envs.get(key)
        if state is None:
            return []
        return [{**p.describe(), "process": p.spec.process} for p in state.running]

    def listing(self, key: Key) -> dict[str, Any]:
        state = self.envs.get(key) or EnvWorkers()
        counts = _counts(state.spec) if state.spec else {}
        return {"workers": self.describe(key), "paused": state.paused, "counts": counts}

    async def close(self) -> None:
        running = [p for state in self.envs.values() for p in state.running]
        await asyncio.gather(*(p.stop() for p in running), return_exceptions=True)
        self.envs.clear()


def _counts(spec: InstanceSpec) -> dict[str, int]:
    return {name: worker.count for name, worker in spec.workers.items()}


def _same_set(current: InstanceSpec | None, wanted: InstanceSpec) -> bool:
    if current is None:
        return not wanted.workers
    same_commands = {n: w.run for n, w in current.workers.items()} == {
        n: w.run for n, w in wanted.workers.items()
    }
    return current.release == wanted.release and same_commands


async def _first_exit(processes: list[ManagedProcess], grace: float) -> dict[str, Any] | None:
    """The first of ``processes`` to exit within ``grace`` seconds, with its last output;
    None when every one stayed up."""
    if not processes or grace <= 0:
        return None
    started = time.monotonic()
    exits = {p.exited(): p for p in processes}
    done, _ = await asyncio.wait(exits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    if not done:
        return None
    future = next(iter(done))
    process = exits[future]
    output = await process.final_output()
    return {
        "process": process.spec.process,
        "id": process.id,
        "exit_code": future.result(),
        "seconds": round(time.monotonic() - started, 2),
        "output": output,
    }
