"""Operations run inside the server: each request runs one ``shiplane.api`` operation in a worker
thread, streaming its progress as NDJSON and ending with its Result.

The operation belongs to the server, not to the connection: a client that goes away (killed,
network gone) only stops hearing about it; the deploy carries on and its log shows the rest.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shiplane import api
from shiplane.caller import ROLES, Caller
from shiplane.config import snapshot
from shiplane.config.loader import LoadedConfig
from shiplane.errors import ConfigError, OperationInterrupted, ShiplaneError
from shiplane.faultpoints import FAULT
from shiplane.gitops import server_repo
from shiplane.layout import Layout, shiplane_home
from shiplane.notify.notifier import Notifier
from shiplane.operations.boundary import log_crash
from shiplane.operations.session import Presented
from shiplane.pipeline.context import InjectedCrash
from shiplane.results import Result

log = logging.getLogger("shiplane.server")
# Operations that take a progress callback.
WITH_PROGRESS = frozenset(
    {"deploy", "promote", "approve", "rollback", "restart", "env_set", "env_unset"}
)
DONE = object()
# Seconds between heartbeats on a quiet operation; clients give up after several missed.
HEARTBEAT = 5.0


class OperationRunner:
    def __init__(self, workers: int = 16) -> None:
        # Its own pool: the loop's default executor stays free for the server's own waits.
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="operation")
        self.allow_faults = os.environ.get("SHIPLANE_ALLOW_FAULTS") == "1"
        # Sends in its own threads: an operation's result never waits for a receiver.
        self.notifier = Notifier()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.notifier.close()

    async def stream(
        self, name: str, request: dict[str, Any], peer: Presented | None = None
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[object] = asyncio.Queue()

        def progress(step: str, status: str) -> None:
            event = {"event": "progress", "step": step, "status": status}
            loop.call_soon_threadsafe(events.put_nowait, event)

        # A fresh context per operation: worker threads are reused, what one operation set
        # (its fault, its claims) must not leak into the next.
        context = contextvars.Context()
        extra: dict[str, Any] = {}
        future = loop.run_in_executor(
            self.executor, context.run, self._run, name, request, progress, extra, peer
        )

        def finished(done: asyncio.Future[Result]) -> None:
            events.put_nowait(DONE)

        future.add_done_callback(finished)
        while True:
            try:
                event = await asyncio.wait_for(events.get(), HEARTBEAT)
            except TimeoutError:
                # A quiet step (a long build): tell the client the server is alive.
                event = {"event": "alive"}
            if event is DONE:
                break
            yield _line(event)
        yield _line({"event": "result", "result": _outcome(name, future).to_dict(), **extra})

    async def run_for_server(
        self, name: str, caller: Caller, loaded: LoadedConfig, **args: Any
    ) -> Result:
        """Run operation ``name`` for the server itself (its watch): no client, no stream."""
        loop = asyncio.get_running_loop()

        def run() -> Result:
            presented = Presented(internal=True)
            return api.call(name, caller, loaded=loaded, presented=presented, **args)

        return await loop.run_in_executor(self.executor, contextvars.Context().run, run)

    def _run(
        self,
        name: str,
        request: dict[str, Any],
        progress: Any,
        extra: dict[str, Any],
        peer: Presented | None = None,
    ) -> Result:
        try:
            caller = _caller(request["caller"])
            args = dict(request.get("args") or {})
            factor = request.get("factor")
            if factor is not None and not isinstance(factor, dict):
                raise ValueError("factor must be an object")
        except (KeyError, TypeError, ValueError) as exc:
            return Result(command=name).fail(ConfigError(f"malformed operation request: {exc}"))
        try:
            # The config the client sent, never a path of the client's (it may be elsewhere).
            loaded = snapshot.receive(request.get("config"), shiplane_home())
        except ShiplaneError as exc:
            return Result(command=name, env=args.get("env")).fail(exc)
        clash = sorted(set(args) & RESERVED)
        if clash:
            return Result(command=name).fail(
                ConfigError(f"malformed operation request: reserved argument(s) {clash}")
            )
        if self.allow_faults and request.get("fault"):
            FAULT.set(str(request["fault"]))
        result = api.call(
            name,
            caller,
            loaded=loaded,
            progress=progress if name in WITH_PROGRESS else None,
            token=request.get("token") or None,
            presented=dataclasses.replace(peer or Presented(), factor=factor),
            **args,
        )
        if name in server_repo.MOVES_BRANCHES:
            extra["branches"] = _branches(loaded)
        self.notifier.after_operation(name, loaded, result.to_dict())
        return result


def _branches(loaded: LoadedConfig) -> dict[str, str]:
    """The env branches after the operation: the client fetches them back only when they
    differ from what it has (one git call here saves it a fetch)."""
    try:
        return server_repo.branches(Layout.for_app(loaded.config.app.name).repo)
    except ShiplaneError:
        return {}


# Names api.call takes itself: an argument of the same name would collide.
RESERVED = frozenset({"name", "caller", "config_path", "progress", "token", "loaded", "presented"})


def _caller(data: Any) -> Caller:
    """The caller as the request describes it: only a label and a role the rules know; the
    boundary replaces it with the token's when one is presented."""
    if not isinstance(data, dict):
        raise ValueError("caller must be an object")
    role, label = data.get("role"), data.get("label")
    if role not in ROLES or not isinstance(label, str) or not label:
        raise ValueError(f"caller role must be one of {sorted(ROLES)} with a label")
    # Never the request's word for a person's factor: only the server's check sets that.
    return Caller(role=role, label=label)


def _outcome(name: str, future: asyncio.Future[Result]) -> Result:
    try:
        return future.result()
    except InjectedCrash:
        log.warning("operation %s crashed at an injected fault", name)
    except BaseException:
        crash = log_crash(name)
        log.error("operation %s crashed; traceback in %s", name, crash)
    return Result(command=name).fail(
        OperationInterrupted(
            f"{name} was interrupted inside the server; nothing settled it",
            next_action="run `shiplane status`: it recovers what the operation left",
        )
    )


def _line(event: object) -> bytes:
    return (json.dumps(event, default=str) + "\n").encode()
