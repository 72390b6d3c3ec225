"""The front door's callback fast path (body-less requests, ``fastpath.py``) against upstreams
that misbehave on purpose: bytes after a response, a kept-alive connection closed before it
answers, 1xx before a GET's answer, a huge response to a client that does not read, a client
that leaves mid-response. Real sockets on both sides; the upstreams are raw socket servers so
that they can break the rules the stdlib server keeps."""

from __future__ import annotations

import contextlib
import itertools
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.settings import Limits
from tests.support.doors import KeepAliveApp, door_thread
from tests.support.rawhttp import Client


def read_head(conn: socket.socket) -> bytes:
    """One request head from a raw connection; b"" when the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


class RawUpstream:
    """A TCP server calling ``handle(conn, index)`` for each accepted connection, in a thread."""

    def __init__(self, handle: Callable[[socket.socket, int], None]) -> None:
        self.handle = handle
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.threads: list[threading.Thread] = []
        self.conns: list[socket.socket] = []

    def upstream(self) -> Upstream:
        return Upstream("raw", "127.0.0.1", self.port, {})

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn, self.accepted - 1), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, conn: socket.socket, index: int) -> None:
        try:
            self.handle(conn, index)
        except OSError:
            pass
        finally:
            conn.close()

    @contextmanager
    def running(self) -> Iterator[RawUpstream]:
        acceptor = threading.Thread(target=self._serve, daemon=True)
        acceptor.start()
        try:
            yield self
        finally:
            # shutdown() wakes the threads blocked in accept() and recv(); close() would not.
            for sock in (self.sock, *self.conns):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            acceptor.join(5)
            for thread in self.threads:
                thread.join(5)


def test_bytes_after_a_response_close_the_upstream_and_never_reach_the_next_client() -> None:
    def handle(conn: socket.socket, index: int) -> None:
        while read_head(conn):
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst"
                b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond"  # nobody asked for it
            )

    with RawUpstream(handle).running() as raw, door_thread() as (runner, door):
        runner.do(lambda: door.switch(raw.upstream()))
        for _ in range(4):
            with Client(door.port) as client:
                answer = client.request("GET", "/")
                assert (answer.status, answer.body) == (200, b"first")
        assert raw.accepted == 4  # never pooled: every request had a connection of its own


def test_a_kept_alive_upstream_that_closes_before_answering_is_retried_on_a_fresh_one() -> None:
    def handle(conn: socket.socket, index: int) -> None:
        read_head(conn)
        body = b"conn-%d" % index
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        read_head(conn)  # the next request on this connection: closed unanswered

    with RawUpstream(handle).running() as raw, door_thread() as (runner, door):
        runner.do(lambda: door.switch(raw.upstream()))
        with Client(door.port) as client:
            bodies = [client.request("GET", f"/{i}").body for i in range(3)]
        assert bodies == [b"conn-0", b"conn-1", b"conn-2"]
        assert runner.do(lambda: door.stats().tripped.get("upstream_error", 0)) == 0


def test_early_hints_before_a_get_are_forwarded_then_the_final_response() -> None:
    def handle(conn: socket.socket, index: int) -> None:
        while read_head(conn):
            conn.sendall(
                b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            )

    with RawUpstream(handle).running() as raw, door_thread() as (runner, door):
        runner.do(lambda: door.switch(raw.upstream()))
        with Client(door.port) as client:
            for _ in range(3):
                answer = client.request("GET", "/")
                assert (answer.informational, answer.status, answer.body) == ([103], 200, b"ok")
        assert raw.accepted == 1  # the connection stayed in step: pooled and reused


def test_response_heads_that_come_in_pieces_reach_the_client_rewritten() -> None:
    """The fast path finds a head in the bytes llhttp accepted, across reads, after a 1xx and
    after the empty lines llhttp skips before a status line; hop-by-hop headers go whether the
    head is the usual kind or needs the full rewrite."""
    answers = [
        b"\r\n\r\nHTTP/1.1 200 OK\r\nServer: raw\r\nConnection: keep-alive\r\n"
        b"Keep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\nplain",
        b"\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n\r\nHTTP/1.1 200 OK\r\n"
        b"Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nContent-Length: 4\r\n\r\nfull",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kept: k\r\n\r\n"
        b"7\r\nchunked\r\n0\r\n\r\n",
    ]
    splits = [1, 7, 17, 30, 45, 60]  # some fall inside the 1xx, one right after it

    def handle(conn: socket.socket, index: int) -> None:
        turn = 0
        while read_head(conn):
            answer = answers[turn % len(answers)]
            turn += 1
            start = 0
            for cut in [*splits, len(answer)]:
                conn.sendall(answer[start:cut])
                start = cut
                time.sleep(0.01)  # each piece its own read

    with RawUpstream(handle).running() as raw, door_thread() as (runner, door):
        runner.do(lambda: door.switch(raw.upstream()))
        with Client(door.port) as client:
            for _ in range(2):
                got = [client.request("GET", "/") for _ in answers]
                assert [(a.status, a.body) for a in got] == [
                    (200, b"plain"),
                    (200, b"full"),
                    (200, b"chunked"),
                ]
                assert got[1].informational == [103]
                assert got[0].headers["server"] == "raw" and got[2].headers["x-kept"] == "k"
                for answer in got:
                    assert "x-secret" not in answer.headers and "keep-alive" not in answer.headers
                    assert answer.headers["connection"] == "keep-alive"
        assert raw.accepted == 1  # every exchange ended clean: one pooled connection throughout


def test_a_status_line_llhttp_takes_that_is_not_http_cannot_smuggle_a_head() -> None:
    """llhttp also takes RTSP/ and ICE/ status lines: such a response is rebuilt as HTTP/1.1
    from its status code, and a head hidden in its body stays body."""
    hidden = b"HTTP/1.1 204 No\r\nContent-Length: 0\r\nSet-Cookie: evil=1\r\n\r\n"
    answers = [
        b"RTSP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(hidden), hidden),
        b"ICE/1.0 200 OK\r\nX-Note: HTTP/1.1 204 No\r\nContent-Length: 5\r\n\r\nhello",
    ]

    turns = itertools.count()  # across connections: a 1.0 status line may end each one

    def handle(conn: socket.socket, index: int) -> None:
        while read_head(conn):
            conn.sendall(answers[next(turns) % len(answers)])

    with RawUpstream(handle).running() as raw, door_thread() as (runner, door):
        runner.do(lambda: door.switch(raw.upstream()))
        with Client(door.port) as client:
            first, second = client.request("GET", "/"), client.request("GET", "/")
            assert (first.status, first.body) == (200, hidden)
            assert "set-cookie" not in first.headers
            assert (second.status, second.body) == (200, b"hello")
            assert second.headers["x-note"] == "HTTP/1.1 204 No"
            assert client.request("GET", "/").body == hidden  # still in step


def test_many_early_hints_in_one_read_are_all_forwarded() -> None:
    hints = b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n" * 500

    def handle(conn: socket.socket, index: int) -> None:
        while read_head(conn):
            conn.sendall(hints + b"\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    with RawUpstream(handle).running() as raw, door_thread() as (runner, door):
        runner.do(lambda: door.switch(raw.upstream()))
        with Client(door.port) as client:
            answer = client.request("GET", "/")
        assert (answer.status, answer.body) == (200, b"ok")
        assert answer.informational == [103] * 500


def test_a_response_is_read_from_the_upstream_no_faster_than_the_client_takes_it() -> None:
    size = 256 << 20
    sent = [0]

    def handle(conn: socket.socket, index: int) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        piece = b"z" * (1 << 20)
        for _ in range(size >> 20):
            conn.sendall(piece)
            sent[0] += len(piece)

    with RawUpstream(handle).running() as raw, door_thread() as (runner, door):
        runner.do(lambda: door.switch(raw.upstream()))
        sock = socket.create_connection(("127.0.0.1", door.port), timeout=30)
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(2)  # the client reads nothing meanwhile
            held_back = sent[0]
            assert held_back < 96 << 20, held_back  # socket buffers, not the whole body
            received = 0
            while received < size + 40:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
        assert sent[0] == size and received > size


def test_a_client_that_leaves_mid_response_does_not_pass_its_answer_on() -> None:
    limits = Limits(upstream_read_timeout=20)
    with KeepAliveApp("blue").running() as blue, door_thread(limits) as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        with socket.create_connection(("127.0.0.1", door.port), timeout=10) as leaver:
            leaver.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            assert wait_inflight(runner, door, 1)
            # A reset, not a half-close (after which a client may still read its answer).
            leaver.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert wait_inflight(runner, door, 0)  # the exchange ended with the client
        blue.gate.set()  # the slow answer now comes, to nobody
        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}", timeout=10) as client:
            for i in range(5):
                answer = client.get(f"/id/after{i}")
                assert answer.status_code == 200 and answer.json()["path"] == f"/id/after{i}"


def wait_inflight(runner: object, door: object, count: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        inflight = runner.do(lambda: door.stats().inflight)  # type: ignore[attr-defined]
        if sum(inflight.values()) == count:
            return True
        time.sleep(0.05)
    return False


def test_streamed_and_fast_requests_alternate_on_one_connection() -> None:
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        with Client(door.port) as client:
            for i in range(3):
                posted = client.request("POST", f"/echo/p{i}", body=b"y" * 5000)
                assert (posted.status, posted.body[:13]) == (201, b"blue:p%d:5000:" % i)
                got = client.request("GET", f"/id/g{i}")
                assert got.status == 200 and b'"/id/g%d"' % i in got.body
                head = client.request("HEAD", f"/id/h{i}")
                assert head.status == 200 and head.body == b""


def test_an_idle_client_is_let_go_after_the_idle_timeout() -> None:
    limits = Limits(idle_timeout=0.5)
    with KeepAliveApp("blue").running() as blue, door_thread(limits) as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        with Client(door.port) as client:
            assert client.request("GET", "/id/1").status == 200
            started = time.monotonic()
            assert client.sock.recv(1) == b""  # closed by the door
            assert 0.3 < time.monotonic() - started < 5


def test_a_kept_alive_client_is_held_switched_and_drained_like_any_other() -> None:
    limits = Limits(hold_timeout=20, upstream_read_timeout=20)
    with (
        KeepAliveApp("blue").running() as blue,
        KeepAliveApp("green").running() as green,
        door_thread(limits) as (runner, door),
    ):
        runner.do(lambda: door.switch(blue.upstream))
        with Client(door.port) as client, Client(door.port) as slow:
            assert b'"name": "blue"' in client.request("GET", "/id/1").body
            # A hold parks the next request of a connection that is already open and kept alive.
            runner.do(door.hold)
            answers: list[bytes] = []
            waiter = threading.Thread(
                target=lambda: answers.append(client.request("GET", "/id/2").body)
            )
            waiter.start()
            deadline = time.monotonic() + 10
            while runner.do(lambda: door.stats().waiting) < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            runner.do(lambda: door.switch(green.upstream))  # switched during the hold
            runner.do(door.release)
            waiter.join(10)
            assert len(answers) == 1 and b'"name": "green"' in answers[0]
            assert b'"name": "green"' in client.request("GET", "/id/3").body
            # A drain waits for a body-less request in flight on the instance going away.
            runner.do(lambda: door.switch(blue.upstream))
            slow_answer: list[int] = []
            sender = threading.Thread(
                target=lambda: slow_answer.append(slow.request("GET", "/slow").status)
            )
            sender.start()
            assert wait_inflight(runner, door, 1)
            runner.do(lambda: door.switch(green.upstream))
            assert runner.call(door.drain("blue", 0.2)) is False  # still in flight
            blue.gate.set()
            assert runner.call(door.drain("blue", 10)) is True
            sender.join(10)
            assert slow_answer == [200]
            assert b'"name": "green"' in client.request("GET", "/id/4").body


def _pipelined(port: int, ids: list[int], cut: int | None, problems: list[str]) -> None:
    """Pipeline GET /id/N for ``ids`` and half-close; or vanish after ``cut`` bytes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        data = b"".join(b"GET /id/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in ids)
        if cut is not None:
            sock.sendall(data[:cut])
            return  # gone mid-head
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
        seen = [int(n) for n in re.findall(rb'"path": "/id/(\d+)"', got)]
        if seen != ids:
            problems.append(f"sent {ids[:3]}.. got {seen[:3]}.. ({len(seen)} of {len(ids)})")
    finally:
        sock.close()


def _stalled_reader(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /chunked/2000 HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        time.sleep(1.5)  # never reads a byte


def test_pipelining_clients_that_vanish_or_stall_get_only_their_own_answers() -> None:
    """90 clients pipelining up to 30 requests and half-closing, 30 leaving mid-head, 10 never
    reading big answers, all at once: each answer reaches its own request, in order."""
    with KeepAliveApp("blue").running() as blue, door_thread() as (runner, door):
        runner.do(lambda: door.switch(blue.upstream))
        problems: list[str] = []
        rng = random.Random(7)
        threads = []
        for n in range(120):
            ids = [n * 1000 + k for k in range(rng.randint(1, 30))]
            cut = rng.randint(1, 200) if n % 4 == 0 else None
            args = (door.port, ids, cut, problems)
            threads.append(threading.Thread(target=_pipelined, args=args))
        threads += [threading.Thread(target=_stalled_reader, args=(door.port,)) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert problems == []
        with httpx.Client(base_url=f"http://127.0.0.1:{door.port}", timeout=10) as client:
            for i in range(20):  # and it serves on
                assert client.get(f"/id/{i}").json()["path"] == f"/id/{i}"
