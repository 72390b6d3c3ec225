"""The built-in front door on real sockets: relaying, stats, drain, hold/release, /_deploy/*.

Upstreams are stdlib HTTP servers in threads, so what the door relays is checked against an
HTTP implementation that is not its own.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shiplane.frontdoor.base import FrontDoor, Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.endpoints import DeployEndpoints, trusted

TOKEN = "t0ken-for-tests"
INFO = {"sha": "abc1234", "release": "1-abc1234", "deployed_at": 1.0, "deployment_id": "d1"}


class FakeApp:
    """One instance: answers its name; /slow waits for ``gate``."""

    def __init__(self, name: str, host: str = "127.0.0.1") -> None:
        self.name = name
        self.hits = 0
        self.gate = threading.Event()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the door's pool expects

            def do_GET(self) -> None:
                app.hits += 1
                if self.path == "/slow":
                    app.gate.wait(10)
                body = json.dumps({"name": app.name, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.upstream = Upstream(name, host, self.server.server_address[1], dict(INFO))

    @contextmanager
    def running(self) -> Iterator[FakeApp]:
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
    return {"env": env, "status": "from the server"}


@asynccontextmanager
async def open_door(hold_timeout: float = 5.0) -> AsyncIterator[tuple[BuiltinFrontDoor, str]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    endpoints = DeployEndpoints("dev", TOKEN, no_status, no_status)
    door = BuiltinFrontDoor("dev", port, endpoints.answer, hold_timeout=hold_timeout)
    door.listen(sock)
    try:
        yield door, f"http://127.0.0.1:{port}"
    finally:
        await door.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_builtin_door_implements_the_interface() -> None:
    assert issubclass(BuiltinFrontDoor, FrontDoor)


def test_relays_to_the_active_upstream_and_counts() -> None:
    async def scenario() -> None:
        with FakeApp("blue").running() as blue, FakeApp("green").running() as green:
            async with open_door() as (door, url), httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/x")).status_code == 503  # nothing serves yet
                assert door.stats().requests == 0
                assert door.switch(blue.upstream) is None
                assert door.active() == blue.upstream
                for _ in range(3):
                    assert (await client.get("/x")).json() == {"name": "blue", "path": "/x"}
                assert door.switch(green.upstream) == blue.upstream
                assert (await client.get("/y")).json()["name"] == "green"
                stats = door.stats()
                assert (stats.requests, dict(stats.inflight)) == (4, {})
                assert stats.port == int(url.rsplit(":", 1)[1])
                assert stats.switched_at is not None and not stats.held
                assert (blue.hits, green.hits) == (3, 1)

    run(scenario)


def test_inflight_and_drain() -> None:
    async def scenario() -> None:
        with FakeApp("blue").running() as blue, FakeApp("green").running() as green:
            async with open_door() as (door, url), httpx.AsyncClient(base_url=url) as client:
                door.switch(blue.upstream)
                slow = asyncio.create_task(client.get("/slow"))
                await eventually(lambda: blue.hits == 1)
                assert dict(door.stats().inflight) == {"blue": 1}
                door.switch(green.upstream)
                assert await door.drain("blue", 0.1) is False  # still in flight
                blue.gate.set()
                assert await door.drain("blue", 5) is True
                assert (await slow).json()["name"] == "blue"  # finished where it started
                assert dict(door.stats().inflight) == {}

    run(scenario)


def test_hold_queues_requests_until_release() -> None:
    async def scenario() -> None:
        with FakeApp("blue").running() as blue, FakeApp("green").running() as green:
            async with open_door() as (door, url), httpx.AsyncClient(base_url=url) as client:
                door.switch(blue.upstream)
                door.hold()
                held = asyncio.create_task(client.get("/x"))
                await eventually(lambda: door.stats().waiting == 1)
                await asyncio.sleep(0.2)
                assert not held.done() and door.stats().held
                assert (blue.hits, green.hits) == (0, 0)
                # Status endpoints stay up during a hold: a deploy watches them.
                assert (await client.get("/_deploy/health")).status_code == 200
                door.switch(green.upstream)  # e.g. after migrating
                door.release()
                response = await held
                assert response.status_code == 200
                assert response.json()["name"] == "green"  # routed after the release
                stats = door.stats()
                assert (stats.held, stats.waiting, stats.requests) == (False, 0, 1)

    run(scenario)


def test_request_held_past_the_bound_gets_503() -> None:
    async def scenario() -> None:
        with FakeApp("blue").running() as blue:
            async with (
                open_door(hold_timeout=0.3) as (door, url),
                httpx.AsyncClient(base_url=url) as client,
            ):
                door.switch(blue.upstream)
                door.hold()
                response = await client.get("/x")
                assert response.status_code == 503
                assert "held" in response.json()["error"]
                assert blue.hits == 0 and door.stats().waiting == 0
                # The connection is still usable once the hold ends.
                door.release()
                assert (await client.get("/x")).json()["name"] == "blue"

    run(scenario)


def test_connects_to_the_upstreams_host() -> None:
    # Nothing listens on 127.0.0.1 at this port: only the upstream's own host answers.
    async def scenario() -> None:
        with FakeApp("remote", host="127.0.0.2").running() as remote:
            async with open_door() as (door, url), httpx.AsyncClient(base_url=url) as client:
                door.switch(remote.upstream)
                assert (await client.get("/x")).json()["name"] == "remote"

    run(scenario)


def test_deploy_endpoints_through_the_door() -> None:
    async def scenario() -> None:
        with FakeApp("blue").running() as blue:
            async with open_door() as (door, url), httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/_deploy/version")).status_code == 503
                health = await client.get("/_deploy/health")
                assert (health.status_code, health.json()["ok"]) == (503, False)
                door.switch(blue.upstream)
                version = await client.get("/_deploy/version?x=1")
                assert version.status_code == 200
                assert version.json() == {"env": "dev", **INFO}
                health = await client.get("/_deploy/health")
                assert health.json() == {"ok": True, "env": "dev", "sha": "abc1234"}
                status = await client.get("/_deploy/status")  # loopback too needs the token
                assert status.status_code == 401
                status = await client.get("/_deploy/status", headers={"x-shiplane-token": TOKEN})
                assert status.json() == {"env": "dev", "status": "from the server"}
                assert (await client.get("/_deploy/nope")).status_code == 404
                assert blue.hits == 0  # answered beside the proxy, never relayed
                assert door.stats().requests == 0

    run(scenario)


@pytest.mark.parametrize(
    ("client", "headers", "expected"),
    [
        ("127.0.0.1", {}, False),
        ("::1", {}, False),
        ("127.0.0.1", {"x-shiplane-token": TOKEN}, True),
        ("10.0.0.7", {}, False),
        ("10.0.0.7", {"x-shiplane-token": "wrong"}, False),
        ("10.0.0.7", {"x-shiplane-token": TOKEN}, True),
        ("10.0.0.7", {"authorization": f"Bearer {TOKEN}"}, True),
        ("10.0.0.7", {"authorization": "Bearer "}, False),
    ],
)
def test_trusted(client: str, headers: dict[str, str], expected: bool) -> None:
    assert trusted(client, headers, TOKEN) is expected


def test_status_needs_the_token_off_loopback() -> None:
    endpoints = DeployEndpoints("dev", TOKEN, no_status, no_status)

    async def answer(name: str, headers: dict[str, str]) -> int:
        status, _ = await endpoints.answer(f"/_deploy/{name}", "10.0.0.7", headers, None)
        return status

    async def scenario() -> None:
        assert await answer("status", {}) == 401
        assert await answer("migrations", {"x-shiplane-token": "wrong"}) == 401
        assert await answer("migrations", {"x-shiplane-token": TOKEN}) == 200
        assert await answer("version", {}) == 503  # public; nothing serves

    run(scenario)
