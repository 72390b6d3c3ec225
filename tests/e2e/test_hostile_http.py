"""Hostile clients against the built-in front door: response crossing, smuggling, slow and huge
clients, WebSockets across a switch, holds, host routing. Real sockets, real upstreams (the
stdlib's keep-alive HTTP/1.1 server, ``websockets``), real clients (h11, httpx, websockets)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.replies import MAINTENANCE_BYPASS
from shiplane.frontdoor.settings import DoorSettings, Limits
from shiplane.layout import ServerLayout
from shiplane.server.core import EnvKey, PortInUse, ServerCore
from tests.support.app_repo import AppRepo, free_port, make_repo
from tests.support.doors import DoorThread, KeepAliveApp, door_thread, shared_listener
from tests.support.rawhttp import Client, exchange_raw, status_of
from tests.support.wait import serves, wait_for

ROOT = Path(__file__).resolve().parents[2]
BYPASS = MAINTENANCE_BYPASS.decode()


# Responses never cross ---------------------------------------------------------------------
def test_expect_100_then_the_next_request_gets_its_own_response() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        with Client(door.port) as attacker:
            posted = attacker.request("POST", "/echo/evil", body=b"x" * 1000, expect=True)
            assert posted.informational == [100]  # forwarded, then the final response
            assert (posted.status, posted.body[:15]) == (201, b"blue:evil:1000:")
            # The attacker's own next request, same connection: its own answer.
            assert Client.request(attacker, "GET", "/id/a1").status == 200
        with Client(door.port) as victim:
            answer = victim.request("GET", "/id/victim")
            assert answer.status == 200 and b'"/id/victim"' in answer.body


def test_concurrent_clients_each_get_exactly_their_own_responses() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))

        def client(n: int) -> list[str]:
            wrong = []
            with Client(door.port) as conn:
                for i in range(15):
                    ident = f"c{n}r{i}"
                    if i % 3 == 0:
                        got = conn.request("POST", f"/echo/{ident}", body=b"y" * i, expect=True)
                        if not got.body.startswith(f"blue:{ident}:{i}:".encode()):
                            wrong.append(f"{ident}: {got.body[:40]!r}")
                    else:
                        got = conn.request("GET", f"/id/{ident}")
                        if f'"/id/{ident}"'.encode() not in got.body:
                            wrong.append(f"{ident}: {got.body[:60]!r}")
            return wrong

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(client, range(16)))
        assert [w for r in results for w in r] == []


def test_expect_100_against_gunicorn_gthread_keep_alive_never_crosses_responses() -> None:
    port = free_port()
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--keep-alive",
            "30",
            "-b",
            f"127.0.0.1:{port}",
            "tests.support.wsgi_echo:app",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: serves(f"http://127.0.0.1:{port}/up"), 20)
        with door_thread() as (runner, door):
            runner.do(lambda: door.switch(Upstream("g", "127.0.0.1", port, {})))

            def client(n: int) -> list[str]:
                wrong = []
                with Client(door.port) as conn:
                    for i in range(10):
                        ident = f"/c{n}r{i}"
                        posted = conn.request("POST", ident, body=b"p" * (i + 1), expect=True)
                        if posted.body != f"posted:{ident}:{i + 1}".encode():
                            wrong.append(f"{ident}: {posted.body!r}")
                        got = conn.request("GET", ident + "g")
                        if got.body != f"got:{ident}g".encode():
                            wrong.append(f"{ident}g: {got.body!r}")
                return wrong

            with ThreadPoolExecutor(12) as pool:
                results = list(pool.map(client, range(12)))
            assert [w for r in results for w in r] == []
    finally:
        gunicorn.terminate()
        gunicorn.wait(30)


def test_pipelined_requests_are_answered_in_order() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        pipeline = (
            b"".join(b"GET /id/p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
            + b"GET /id/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        raw = exchange_raw(door.port, pipeline)
        order = [raw.find(b'"/id/p%d"' % i) for i in range(5)] + [raw.find(b'"/id/last"')]
        assert -1 not in order and order == sorted(order)
        assert raw.count(b"HTTP/1.1 200 OK") == 6


def test_head_204_304_and_chunked_framing_keep_the_connection_in_step() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        with Client(door.port) as conn:
            head = conn.request("HEAD", "/id/h")
            assert head.status == 200 and head.body == b"" and int(head.headers["content-length"])
            assert conn.request("GET", "/204").status == 204
            not_modified = conn.request("GET", "/304")
            assert (not_modified.status, not_modified.headers["etag"]) == (304, '"x"')
            chunked = conn.request("GET", "/chunked/50")
            assert chunked.headers["transfer-encoding"] == "chunked"
            assert chunked.body == b"".join(b"blue-%d;" % i for i in range(50))
            after = conn.request("GET", "/id/after")
            assert b'"/id/after"' in after.body


def test_chunked_request_body_is_streamed_upstream() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))

        def pieces() -> object:
            for _ in range(100):
                yield b"z" * 1000

        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}") as client:
            answer = client.post("/echo/ch", content=pieces())  # chunked: no length given
            assert answer.status_code == 201 and answer.text.startswith("blue:ch:100000:")


# Smuggling and malformed requests ----------------------------------------------------------
POST = b"POST /echo/s HTTP/1.1\r\nHost: x\r\n"
SMUGGLING = {
    "cl_te": POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "te_cl": POST + b"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG",
    "duplicate_cl": POST + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "te_obfuscated_value": POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te_space_before_colon": POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te_list": POST + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "te_line_folding": POST + b"Foo: bar\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad_chunk_size": POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk_size_overflow": POST + b"Transfer-Encoding: chunked\r\n\r\n"
    b"FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n",
    "negative_cl": POST + b"Content-Length: -3\r\n\r\nabc",
    "bare_lf": b"GET /id/lf HTTP/1.1\nHost: x\n\n",
    "bare_lf_in_header": b"GET /id/lf HTTP/1.1\r\nHost: x\nX-Y: z\r\n\r\n",
    "nul_in_header": b"GET /id/nul HTTP/1.1\r\nHost: x\r\nX-Y: a\x00b\r\n\r\n",
    "nul_in_target": b"GET /id/\x00nul HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_and_malformed_requests_get_400_and_a_closed_connection(name: str) -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        follow_up = b"GET /id/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        raw = exchange_raw(door.port, SMUGGLING[name] + follow_up)  # returns once closed
        # Chunked bodies are checked as they stream: the head may have gone upstream already.
        assert status_of(raw) == 400, raw[:200]
        assert b"smuggled" not in raw and raw.count(b"HTTP/1.1") == 1
        assert runner.do(lambda: door.stats().tripped.get("bad_request", 0)) >= 1
        if not name.startswith("bad_chunk") and name != "chunk_size_overflow":
            assert blue.requests == 0


def test_oversized_head_gets_431() -> None:
    with (
        KeepAliveApp("blue").running() as blue,
        door_thread(Limits(max_head=8192)) as (
            runner,
            door,
        ),
    ):
        runner.do(lambda: door.switch(blue.upstream))
        many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 100) for i in range(100))
        raw = exchange_raw(door.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        assert status_of(raw) == 431
        one_line = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 1_000_000  # never ends
        assert status_of(exchange_raw(door.port, one_line)) == 431
        # Whole header lines past the limit in one send, the head never finished: 431 at once
        # (the first chunk of a head counts too), not 408 when the header timeout runs out.
        unfinished = b"GET / HTTP/1.1\r\nHost: x\r\n" + many[:11_000]
        with socket.create_connection(("127.0.0.1", door.port), timeout=5) as sock:
            sock.sendall(unfinished)
            assert status_of(sock.recv(4096)) == 431
        assert blue.requests == 0
        assert runner.do(lambda: door.stats().tripped["head_too_large"]) == 3


# Slow and huge clients ----------------------------------------------------------------------
def test_slow_head_times_out_with_408_and_is_counted() -> None:
    limits = Limits(header_timeout=0.5, idle_timeout=1.0)
    with door_thread(limits) as (runner, door):
        with socket.create_connection(("127.0.0.1", door.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # ...and never the end
            started = time.monotonic()
            raw = sock.recv(65536)
            assert status_of(raw) == 408 and time.monotonic() - started < 3
        with socket.create_connection(("127.0.0.1", door.port), timeout=5) as idle:
            assert idle.recv(100) == b""  # an idle connection is let go after idle_timeout
        assert runner.do(lambda: door.stats().tripped["header_timeout"]) == 1


def test_connection_caps_refuse_and_count() -> None:
    limits = Limits(max_connections=50, max_connections_per_client=20, header_timeout=30)
    with KeepAliveApp("blue").running() as blue, door_thread(limits) as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        held = [socket.create_connection(("127.0.0.1", door.port)) for _ in range(60)]
        try:
            for sock in held:
                sock.sendall(b"GET / HTTP/1.1\r\n")
            time.sleep(0.5)
            stats = runner.do(door.stats)
            assert stats.connections == 20
            assert stats.tripped["max_connections_per_client"] == 40
        finally:
            for sock in held:
                sock.close()
        # Once they are gone, clients are served again.
        time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{door.port}/id/ok").status_code == 200


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_200_mb_body_is_streamed_and_memory_stays_flat() -> None:
    size = 200 * 1024 * 1024
    with KeepAliveApp("blue").running() as blue:
        door = subprocess.Popen(
            [sys.executable, "-m", "tests.support.doors", str(blue.port), str(size + 1)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert door.stdout is not None
            port = int(door.stdout.readline())
            before = _rss_peak_kib(door.pid)

            def body() -> object:
                piece = b"u" * (1 << 20)
                for _ in range(200):
                    yield piece

            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                headers = {"content-length": str(size)}
                answer = client.post("/echo/big", content=body(), headers=headers)
                assert answer.status_code == 201
                assert answer.text.startswith(f"blue:big:{size}:")
                grown_mib = (_rss_peak_kib(door.pid) - before) / 1024
                assert grown_mib < 40, f"the door's peak RSS grew {grown_mib:.0f} MiB"
                # One byte over the limit: 413 before anything reaches the app.
                requests_before = blue.requests
                headers = {"content-length": str(size + 2)}
                too_big = client.post("/echo/big", content=b"v" * (size + 2), headers=headers)
                assert too_big.status_code == 413
                assert blue.requests == requests_before
        finally:
            door.stdin.close()  # type: ignore[union-attr]
            door.wait(10)
            door.stdout.close()  # type: ignore[union-attr]


def test_chunked_body_over_the_limit_gets_413() -> None:
    with (
        KeepAliveApp("blue").running() as blue,
        door_thread(Limits(max_body=50_000)) as (
            runner,
            door,
        ),
    ):
        runner.do(lambda: door.switch(blue.upstream))

        def pieces() -> object:
            for _ in range(100):
                yield b"w" * 1000

        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}") as client:
            assert client.post("/echo/big", content=pieces()).status_code == 413
        assert runner.do(lambda: door.stats().tripped["body_too_large"]) == 1


# WebSockets across a switch -----------------------------------------------------------------
@contextmanager
def echo_servers(*names: str) -> Iterator[dict[str, Upstream]]:
    """WebSocket echo apps (the ``websockets`` library), answering "name:message"."""
    runner = DoorThread()

    async def start() -> tuple[list[Any], dict[str, Upstream]]:
        servers, upstreams = [], {}
        for name in names:

            async def echo(socket: Any, name: str = name) -> None:
                async for message in socket:
                    await socket.send(f"{name}:{message}")

            server = await serve(echo, "127.0.0.1", 0)
            port = next(iter(server.sockets)).getsockname()[1]
            servers.append(server)
            upstreams[name] = Upstream(name, "127.0.0.1", port, {})
        return servers, upstreams

    servers, upstreams = runner.call(start())
    try:
        yield upstreams
    finally:

        async def stop() -> None:
            for server in servers:
                server.close()
                await server.wait_closed()

        runner.call(stop())
        runner.stop()


def test_websocket_stays_on_its_instance_through_a_switch_until_the_drain_ends() -> None:
    with echo_servers("blue", "green") as apps, door_thread() as (runner, door):
        runner.do(lambda: door.switch(apps["blue"]))
        url = f"ws://127.0.0.1:{door.port}/ws"
        with connect(url) as old:
            old.send("a")
            assert old.recv(5) == "blue:a"
            runner.do(lambda: door.switch(apps["green"]))
            with connect(url) as new:
                new.send("b")
                assert new.recv(5) == "green:b"
            old.send("c")
            assert old.recv(5) == "blue:c"  # an open socket stays where it began
            stats = runner.do(door.stats)
            assert stats.inflight.get("blue") == 1 and stats.websockets == 1
            draining = asyncio.run_coroutine_threadsafe(door.drain("blue", 1.5), runner.loop)
            time.sleep(0.3)
            old.send("d")
            assert old.recv(5) == "blue:d"  # served while the drain waits
            assert draining.result(10) is False  # the drain timed out...
            with pytest.raises(ConnectionClosed):
                old.recv(5)  # ...and closed it (a TCP close, no close frame)
        assert wait_for(lambda: runner.do(lambda: dict(door.stats().inflight)) == {}, 5)


# Hold, release, maintenance -----------------------------------------------------------------
def test_a_hold_queues_200_requests_and_all_are_answered_after_the_release() -> None:
    limits = Limits(max_connections_per_client=400, hold_timeout=20)
    with KeepAliveApp("blue").running() as blue, door_thread(limits) as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        runner.do(door.hold)

        async def clients() -> list[int]:
            pool = httpx.Limits(max_connections=250)
            base = f"http://127.0.0.1:{door.port}"
            async with httpx.AsyncClient(base_url=base, limits=pool, timeout=30) as client:
                sent = [asyncio.create_task(client.get(f"/id/{i}")) for i in range(200)]
                deadline = time.monotonic() + 20
                while runner.do(lambda: door.stats().waiting) < 200:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
                assert blue.requests == 0
                runner.do(door.release)
                return [(await request).status_code for request in sent]

        assert asyncio.run(clients()) == [200] * 200
        stats = runner.do(door.stats)
        assert (stats.requests, stats.held_timeouts, blue.requests) == (200, 0, 200)


def test_a_hold_past_its_bound_answers_503_with_retry_after_and_counts() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        runner.do(lambda: door.hold(0.3))
        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}") as client:
            answer = client.get("/id/late")
            assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
            assert runner.do(door.stats).held_timeouts == 1
            runner.do(door.release)
            assert client.get("/id/after").status_code == 200
        assert blue.requests == 1


def test_maintenance_answers_503_with_a_page() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        runner.do(lambda: door.maintenance(True))
        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}") as client:
            page = client.get("/")
            assert page.status_code == 503 and "retry-after" in page.headers
            assert "maintenance" in page.text and page.headers["content-type"].startswith(
                "text/html"
            )
            assert client.get("/_deploy/health").status_code == 200  # the deploy still sees it
            runner.do(lambda: door.maintenance(False))
            assert client.get("/id/x").status_code == 200


def test_maintenance_bypass_passes_and_never_reaches_the_app() -> None:
    """The deploy's own checks carry the bypass: relayed, without it; a wrong one is not."""
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        runner.do(lambda: door.maintenance(True, "letmein"))
        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}") as client:
            assert client.get("/id/a").status_code == 503
            assert client.get("/id/b", headers={BYPASS: "guess"}).status_code == 503
            passed = client.get("/id/c", headers={BYPASS: "letmein"})
            assert passed.status_code == 200 and passed.json()["path"] == "/id/c"
            assert BYPASS not in passed.json()["headers"]
            assert client.get("/_deploy/version").status_code == 200
            # Only health and version stay answered: status is behind the page too.
            assert client.get("/_deploy/status").status_code == 503
            assert runner.do(door.maintenance_mode) == (True, "letmein")
            runner.do(lambda: door.maintenance(False, "letmein"))
            assert runner.do(door.maintenance_mode) == (False, None)
            assert client.get("/id/d", headers={BYPASS: "letmein"}).status_code == 200
        assert blue.requests == 2


def test_refusals_get_an_access_log_line_and_are_counted(tmp_path: Path) -> None:
    """What the door answers itself is in the access log (upstream time "-") and counted."""
    log = tmp_path / "logs" / "access.log"
    limits = Limits(max_head=8192, header_timeout=0.5, max_body=1000, max_connections_per_client=3)
    with (
        KeepAliveApp("blue").running() as blue,
        door_thread(limits, access_log=str(log)) as (runner, door),
    ):
        runner.do(lambda: door.switch(blue.upstream))
        port = door.port
        assert httpx.get(f"http://127.0.0.1:{port}/id/ok").status_code == 200
        assert status_of(exchange_raw(port, SMUGGLING["bare_lf"])) == 400
        many = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 100) for i in range(100))
        assert (
            status_of(exchange_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")) == 431
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
            assert status_of(slow.recv(65536)) == 408
        big = b"POST /echo/big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
        assert status_of(exchange_raw(port, big)) == 413
        runner.do(lambda: door.hold(0.2))
        assert httpx.get(f"http://127.0.0.1:{port}/id/late").status_code == 503
        runner.do(door.release)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            time.sleep(0.3)  # accepted: the cap per client is reached
            over = exchange_raw(port, b"")  # answered before it sends a byte
            assert status_of(over) == 503 and b"retry-after: 5" in over
        finally:
            for sock in idle:
                sock.close()
        runner.do(lambda: door.maintenance(True))
        assert httpx.get(f"http://127.0.0.1:{port}/id/page").status_code == 503
        tripped = runner.do(lambda: dict(door.stats().tripped))
    lines = log.read_text().splitlines()
    got = [(line.split('"')[1], int(line.split('"')[2].split()[0])) for line in lines]
    assert got == [
        ("GET /id/ok HTTP/1.1", 200),
        ("-", 400),
        ("-", 431),
        ("-", 408),
        ("POST /echo/big HTTP/1.1", 413),
        ("GET /id/late HTTP/1.1", 503),
        ("-", 503),
        ("GET /id/page HTTP/1.1", 503),
    ]
    assert not lines[0].endswith(" -") and float(lines[0].rsplit(" ", 1)[1]) >= 0
    assert all(line.endswith(" -") for line in lines[1:])  # no upstream was asked
    for kind in (
        "bad_request",
        "head_too_large",
        "header_timeout",
        "body_too_large",
        "held_timeout",
        "max_connections_per_client",
    ):
        assert tripped.get(kind) == 1, (kind, tripped)
    assert blue.requests == 1


# Host routing, forwarding headers, access log ----------------------------------------------
def test_two_environments_share_a_port_by_host_and_unknown_hosts_get_421() -> None:
    with (
        KeepAliveApp("blue").running() as blue,
        KeepAliveApp("green").running() as green,
        shared_listener({"dev": ("dev.example.com",), "prod": ("example.com",)}) as shared,
    ):
        runner, port, doors = shared
        runner.do(lambda: doors["dev"].switch(blue.upstream))
        runner.do(lambda: doors["prod"].switch(green.upstream))
        with Client(port) as conn:
            assert b'"blue"' in conn.request("GET", "/", host="dev.example.com").body
            assert b'"green"' in conn.request("GET", "/", host=f"example.com:{port}").body
            assert b'"green"' in conn.request("GET", "/", host="EXAMPLE.com").body
            assert conn.request("GET", "/", host="evil.example.org").status == 421
            assert b'"blue"' in conn.request("GET", "/", host="dev.example.com").body
        assert status_of(exchange_raw(port, b"GET / HTTP/1.0\r\n\r\n")) == 421  # no Host


def test_forwarded_headers_are_replaced_unless_the_peer_is_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    log = tmp_path / "logs" / "access.log"
    with KeepAliveApp("blue").running() as blue:
        with door_thread(access_log=str(log)) as (runner, door):
            runner.do(lambda: door.switch(blue.upstream))
            spoofed = {"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https"}
            url = f"http://127.0.0.1:{door.port}/id/xff"
            seen = httpx.get(url, headers=spoofed).json()["headers"]
            assert (seen["x-forwarded-for"], seen["x-forwarded-proto"]) == ("127.0.0.1", "http")
            assert seen["x-forwarded-host"] == f"127.0.0.1:{door.port}"
        with door_thread(trusted_proxies=("127.0.0.0/8",)) as (runner, door):
            runner.do(lambda: door.switch(blue.upstream))
            url = f"http://127.0.0.1:{door.port}/id/xff"
            seen = httpx.get(url, headers=spoofed).json()["headers"]
            assert seen["x-forwarded-for"] == "6.6.6.6, 127.0.0.1"
            assert seen["x-forwarded-proto"] == "https"
    line = log.read_text().splitlines()[0]
    assert line.startswith("127.0.0.1 - - [") and '"GET /id/xff HTTP/1.1" 200 ' in line
    assert '"python-httpx/' in line


# The server: claims, shared ports, floods ---------------------------------------------------
def test_the_server_refuses_a_port_or_domain_claimed_twice(tmp_path: Path) -> None:
    async def scenario() -> None:
        core = ServerCore(ServerLayout(tmp_path), "server-token")
        own, shared, spare = free_port(), free_port(), free_port()
        try:
            core.ensure_frontdoor(EnvKey("notes", "dev"), DoorSettings(port=own))
            with pytest.raises(PortInUse, match="already the front door of notes/dev"):
                core.ensure_frontdoor(EnvKey("tasks", "dev"), DoorSettings(port=own))
            dev = DoorSettings(port=free_port(), shared_port=shared, domains=("example.com",))
            core.ensure_frontdoor(EnvKey("notes", "prod"), dev)
            other = DoorSettings(port=spare, shared_port=shared, domains=("tasks.example.com",))
            core.ensure_frontdoor(EnvKey("tasks", "prod"), other)  # shared by host name: fine
            clash = DoorSettings(port=free_port(), shared_port=shared, domains=("example.com",))
            with pytest.raises(PortInUse, match=r"example\.com for tasks/web is already claimed"):
                core.ensure_frontdoor(EnvKey("tasks", "web"), clash)
            with pytest.raises(PortInUse, match=f"port {shared} for tasks/web is already"):
                core.ensure_frontdoor(EnvKey("tasks", "web"), DoorSettings(port=shared))
            await asyncio.sleep(0.1)  # the listeners start
            unknown = await asyncio.to_thread(exchange_raw, shared, b"GET / HTTP/1.0\r\n\r\n")
            assert status_of(unknown) == 421
        finally:
            await core.shutdown()

    asyncio.run(scenario())


def _set_dev(repo: AppRepo, lines: str) -> None:
    config = repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", f"auto_merge = true\n{lines}")
    )


def test_two_apps_share_a_public_port_by_host_name(app_repo: AppRepo, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "second", name="tasks", home=app_repo.home)
    shared = free_port()
    try:
        _set_dev(app_repo, f'listen = "127.0.0.1:{shared}"\ndomains = ["notes.test"]')
        _set_dev(other, f'listen = "127.0.0.1:{shared}"\ndomains = ["tasks.test"]')
        assert app_repo.shiplane("deploy", "dev").code == 0
        deployed = other.shiplane("deploy", "dev")
        assert deployed.code == 0, deployed.stdout
        base = f"http://127.0.0.1:{shared}/_deploy/version"
        notes = httpx.get(base, headers={"host": "notes.test"}, timeout=5).json()["sha"]
        tasks = httpx.get(base, headers={"host": f"tasks.test:{shared}"}, timeout=5).json()["sha"]
        assert notes == app_repo.git("rev-parse", "HEAD") and tasks == other.git(
            "rev-parse", "HEAD"
        )
        assert httpx.get(base, headers={"host": "nobody.test"}, timeout=5).status_code == 421
        # Each keeps its own port on loopback (what the deploy's checks use).
        assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"] == notes
        # A server restart reopens both doors with the same settings (stored with the spec).
        os.kill(int((app_repo.home / "server.pid").read_text()), signal.SIGKILL)
        assert app_repo.shiplane("server").code == 0

        def routed() -> bool:
            try:
                answer = httpx.get(base, headers={"host": "tasks.test"}, timeout=2)
            except httpx.HTTPError:
                return False
            return answer.status_code == 200 and answer.json()["sha"] == tasks

        assert wait_for(routed)
        assert httpx.get(base, headers={"host": "nobody.test"}, timeout=5).status_code == 421
        # A domain another app claimed is refused, naming it.
        config = other.path / "shiplane.toml"
        config.write_text(config.read_text().replace('["tasks.test"]', '["notes.test"]'))
        clash = other.shiplane("deploy", "dev")
        assert clash.code == 64, clash.stdout
        assert "notes.test is already claimed by notes/dev" in clash.data["error"]["message"]
    finally:
        other.stop_server()


def test_slowloris_on_one_door_leaves_other_doors_and_the_control_api_answering(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    other = make_repo(tmp_path / "second", name="tasks", home=app_repo.home)
    flood: list[socket.socket] = []
    try:
        assert app_repo.shiplane("deploy", "dev").code == 0
        assert other.shiplane("deploy", "dev").code == 0
        server_pid = int((app_repo.home / "server.pid").read_text())
        victim = app_repo.ports["dev"]
        flood_started = time.monotonic()
        for _ in range(3000):
            sock = socket.socket()
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", victim))
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            except OSError:
                pass  # refused at the cap: closed at once
            flood.append(sock)
        # While the flood holds its connections, everything else answers.
        assert serves(other.url("dev", "/api/notes"))
        status = app_repo.shiplane("server", "status", "--json")
        assert status.code == 0 and status.data["running"]
        door = status.data["envs"]["dev"]["front_door"]
        assert door["connections"] <= 128  # the per-client cap
        assert door["tripped"]["max_connections_per_client"] >= 2000
        descriptors = len(list(Path(f"/proc/{server_pid}/fd").iterdir()))
        assert descriptors < 600, descriptors
        # Logged, but rate-limited (LimitLog: 10 lines per 10 s window): a flood cannot fill
        # the disk, however long a loaded machine takes to send it.
        windows = int((time.monotonic() - flood_started) // 10) + 2
        log = (app_repo.home / "server.log").read_text()
        assert "max_connections_per_client" in log
        assert log.count("refused a connection") <= 10 * windows, windows
    finally:
        for sock in flood:
            sock.close()
        other.stop_server()


def test_an_upstream_that_stays_silent_gets_504_and_is_counted() -> None:
    limits = Limits(upstream_read_timeout=0.5)
    with KeepAliveApp("blue").running() as blue, door_thread(limits) as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}", timeout=10) as client:
            started = time.monotonic()
            assert client.get("/slow").status_code == 504
            assert time.monotonic() - started < 3
            blue.gate.set()
            assert client.get("/id/next").status_code == 200  # the door serves on
        assert runner.do(lambda: door.stats().tripped["upstream_timeout"]) == 1
