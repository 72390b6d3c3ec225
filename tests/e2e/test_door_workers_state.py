"""A door with two worker processes, driven directly (no server): every change the door makes
is in force on both workers once ``confirmed`` returns, and what the workers count (in flight,
waiting) is summed where drain and hold read it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx

from shiplane.frontdoor.endpoints import DeployEndpoints
from shiplane.frontdoor.settings import DoorSettings
from shiplane.frontdoor.workers import WorkerFrontDoor
from tests.support.doors import TOKEN, DoorThread, KeepAliveApp, no_status
from tests.support.wait import wait_for


@contextmanager
def worker_door(app: KeepAliveApp) -> Iterator[tuple[DoorThread, WorkerFrontDoor]]:
    runner = DoorThread()

    async def make() -> WorkerFrontDoor:
        endpoints = DeployEndpoints("dev", TOKEN, no_status, no_status)
        door = WorkerFrontDoor("dev", DoorSettings(port=0, workers=2), endpoints.answer)
        door.switch(app.upstream)
        await door.confirmed()
        return door

    door = runner.call(make())
    try:
        yield runner, door
    finally:
        runner.call(door.close())
        runner.stop()


def fresh_get(port: int, path: str) -> httpx.Response:
    """On a connection of its own: the kernel picks the worker."""
    with httpx.Client(timeout=30) as client:
        return client.get(f"http://127.0.0.1:{port}{path}")


def test_maintenance_and_switch_are_in_force_on_every_worker_once_confirmed() -> None:
    with (
        KeepAliveApp("a").running() as a,
        KeepAliveApp("b").running() as b,
        worker_door(a) as (runner, door),
    ):

        async def change(on: bool, upstream: KeepAliveApp) -> None:
            door.maintenance(on, None)
            door.switch(upstream.upstream)
            await door.confirmed()

        runner.call(change(True, b))
        answers = [fresh_get(door.port, "/x") for _ in range(40)]
        assert {r.status_code for r in answers} == {503}
        assert "maintenance" in answers[0].text.lower()
        assert fresh_get(door.port, "/_deploy/version").json()["sha"] == "b"
        runner.call(change(False, a))
        assert {fresh_get(door.port, "/x").json()["name"] for _ in range(40)} == {"a"}
        assert wait_for(lambda: all(w.counts.get("requests") for w in door.workers))
        assert all(status["pid"] for status in door.worker_status())


def test_hold_and_drain_count_what_every_worker_holds() -> None:
    with (
        KeepAliveApp("a").running() as a,
        KeepAliveApp("b").running() as b,
        worker_door(a) as (runner, door),
        ThreadPoolExecutor(16) as pool,
    ):
        # Slow requests on several connections: both workers relay some (4 of 8 on one
        # worker has odds of 1 in 128 per worker being left out; the drain sums).
        slow = [pool.submit(fresh_get, door.port, "/slow") for _ in range(8)]
        assert wait_for(lambda: door.stats().inflight.get("a") == 8, timeout=20)
        assert runner.call(door.drain("a", 0.3)) is False  # 8 still in flight

        async def hold() -> None:
            door.hold(20)
            await door.confirmed()

        runner.call(hold())
        held = [pool.submit(fresh_get, door.port, f"/id/{n}") for n in range(6)]
        assert wait_for(lambda: door.stats().waiting == 6, timeout=20)
        assert not any(f.done() for f in held)

        async def switch_and_release() -> None:
            door.switch(b.upstream)
            door.release()
            await door.confirmed()

        runner.call(switch_and_release())
        # Released to what serves by then: the new upstream, none failed.
        answers = [f.result(30) for f in held]
        assert [r.status_code for r in answers] == [200] * 6
        assert {r.json()["name"] for r in answers} == {"b"}
        a.gate.set()
        assert all(f.result(30).status_code == 200 for f in slow)
        assert runner.call(door.drain("a", 10)) is True
        assert "a" not in door.stats().inflight


def test_a_killed_worker_is_started_again_with_the_state_of_now() -> None:
    with (
        KeepAliveApp("a").running() as a,
        KeepAliveApp("b").running() as b,
        worker_door(a) as (runner, door),
    ):
        # A worker still starting has no process yet (its init will carry the state).
        assert wait_for(lambda: door.workers[0].process is not None, timeout=20)
        first = door.workers[0].process
        assert first is not None
        first.kill()
        # Switched while the worker is down: its replacement must start on b.
        runner.call(_switch(door, b))
        assert wait_for(lambda: door.workers[0].pid not in (None, first.pid), timeout=20)
        seen: set[str] = set()
        lock = threading.Lock()

        def ask() -> None:
            name = fresh_get(door.port, "/x").json()["name"]
            with lock:
                seen.add(name)

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: ask(), range(60)))
        assert seen == {"b"}
        assert door.worker_status()[0]["restarts"] == 1


async def _switch(door: WorkerFrontDoor, app: KeepAliveApp) -> None:
    door.switch(app.upstream)
    await door.confirmed()
