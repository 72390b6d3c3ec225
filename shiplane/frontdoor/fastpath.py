"""The relay's fast path: one body-less request answered from the transports' callbacks.

``ClientProtocol`` (client.py) hands over a complete GET-like request that its door only needs
relayed (``FastSite.fast_route``); the request goes out on a pooled upstream connection (or a
new one), and the response is parsed by llhttp in the upstream's ``data_received`` and written
to the client as it comes: no task, no stream buffer, one write per read. Everything else stays
on the streamed relay (exchange.py), whose rules this follows exactly:

- the upstream connection returns to the pool only after a clean, complete response with
  nothing after it; anything else closes it (a stale pooled connection that closed before
  answering is retried once on a fresh one: these methods are idempotent);
- 1xx answers are forwarded to HTTP/1.1 clients and the final response follows; a 101 to a
  request that asked for no upgrade is an upstream error;
- the response head is framed by ``response_head`` (the door's own framing), a head over
  1 MiB or bytes that are not HTTP are a 502, silence longer than the read timeout a 504;
- the upstream is read no faster than the client takes the response.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httptools

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.exchange import NO_BODY_STATUSES, Outcome, response_head
from shiplane.frontdoor.pool import Pool, UpstreamConn
from shiplane.frontdoor.replies import json_reply
from shiplane.frontdoor.settings import Limits
from shiplane.frontdoor.wire import Head

MAX_RESPONSE_HEAD = 1 << 20


class FastClient(Protocol):
    """What an exchange uses of its client connection (``client.ClientProtocol``)."""

    loop: asyncio.AbstractEventLoop
    peer: str
    scheme: bytes

    def write(self, data: bytes) -> None: ...

    def exchange_done(self, keep: bool) -> None: ...


class FastSite(Protocol):
    """What a door offers the fast path (``BuiltinFrontDoor``)."""

    pool: Pool
    limits: Limits

    def fast_route(self, conn: FastClient, head: Head) -> tuple[Upstream, bytes] | None:
        """The upstream and the request to send it, counted in flight; None when the door
        must answer ``head`` itself (the streamed path then does)."""

    def fast_done(self, conn: FastClient, head: Head, upstream: Upstream, outcome: Outcome) -> None:
        """The exchange ended: no longer in flight; log it."""


class UpstreamFailed(Exception):
    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


class FastExchange:
    """One request relayed in callbacks; see the module docstring."""

    __slots__ = (
        "address",
        "client",
        "complete",
        "conn",
        "connecting",
        "done",
        "extra",
        "head",
        "head_bytes",
        "head_done",
        "informational",
        "last_read",
        "loop",
        "mode",
        "outcome",
        "parser",
        "paused",
        "pending",
        "pool",
        "pooled",
        "received",
        "request",
        "response",
        "sent_at",
        "site",
        "timeout",
        "timer",
        "upstream",
    )

    def __init__(
        self,
        client: FastClient,
        site: FastSite,
        head: Head,
        upstream: Upstream,
        request: bytes,
    ) -> None:
        self.client = client
        self.site = site
        self.head = head
        self.upstream = upstream
        self.address = (upstream.host, upstream.port)
        self.request = request
        self.pool = site.pool
        self.timeout = site.limits.upstream_read_timeout
        self.loop = client.loop
        self.outcome = Outcome(keep_alive=head.keep_alive)
        self.conn: UpstreamConn | None = None
        self.connecting: asyncio.Task[UpstreamConn] | None = None
        self.pooled = False
        self.done = False
        self.paused = False
        self.timer: asyncio.TimerHandle | None = None
        self.last_read = 0.0
        self.sent_at = 0.0
        self._reset()

    def _reset(self) -> None:
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.response: Head | None = None
        self.received = False  # any byte of a response
        self.head_bytes = 0
        self.head_done = False
        self.informational = False
        self.complete = False
        self.extra = False  # bytes after the response: the connection cannot be reused
        self.mode = "none"
        self.pending = b""  # the final head, written with the first body bytes

    # the request --------------------------------------------------------------------------
    def begin(self) -> None:
        conn = self.pool.take(self.address)
        if conn is None:
            self._connect()
        else:
            self._send(conn, pooled=True)

    def _connect(self) -> None:
        coro = self.pool.connect(self.address, self.site.limits.upstream_connect_timeout)
        self.connecting = self.loop.create_task(coro)
        self.connecting.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[UpstreamConn]) -> None:
        self.connecting = None
        if task.cancelled():
            return
        exc = task.exception()
        if self.done:
            if exc is None:
                task.result().close()
            return
        if isinstance(exc, TimeoutError):
            self._fail(UpstreamFailed("upstream timed out", timeout=True))
        elif exc is not None:
            self._fail(UpstreamFailed(f"upstream failed: {exc}"))
        else:
            self._send(task.result(), pooled=False)

    def _send(self, conn: UpstreamConn, pooled: bool) -> None:
        self.conn, self.pooled = conn, pooled
        conn.protocol.sink = self
        self.sent_at = time.monotonic()
        self.last_read = self.loop.time()
        conn.transport.write(self.request)
        if self.timer is None:
            self.timer = self.loop.call_at(self.last_read + self.timeout, self._check_timeout)

    def _check_timeout(self) -> None:
        self.timer = None
        if self.done:
            return
        due = self.last_read + self.timeout
        if self.paused:  # the client is slow, not the upstream
            due = self.loop.time() + self.timeout
        if self.loop.time() < due:
            self.timer = self.loop.call_at(due, self._check_timeout)
            return
        self._fail(UpstreamFailed("upstream timed out", timeout=True))

    # the response (pool.Sink) -------------------------------------------------------------
    def upstream_data(self, data: bytes) -> None:
        parser = self.parser
        if self.done or parser is None:
            return
        self.last_read = self.loop.time()
        self.received = True
        if not self.head_done:
            self.head_bytes += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:  # the callback errors and upgrades too
            if not self.complete:
                cause = exc.__context__ if isinstance(exc.__context__, UpstreamFailed) else exc
                self._fail(UpstreamFailed(f"upstream failed: {cause}"))
                return
            self.extra = True
        if self.complete:
            self._finish()
        elif not self.head_done and self.head_bytes > MAX_RESPONSE_HEAD:
            self._fail(UpstreamFailed("upstream failed: response head too large"))
        elif self.pending:
            self.client.write(self.pending)  # the body is late: let the client see the head
            self.pending = b""

    def upstream_lost(self) -> None:
        conn = self.conn
        if self.done or conn is None:
            return
        conn.protocol.sink = None
        if not self.received and self.pooled:
            # A kept-alive connection the upstream closed meanwhile: once more, fresh.
            conn.close()
            self.conn = None
            self._reset()
            self._connect()
            return
        response = self.response
        if (
            self.head_done
            and not self.informational
            and response is not None
            and response.length is None
            and not response.chunked
        ):
            # A body delimited by the close: it ended, and so does the client connection.
            self.outcome.keep_alive = False
            if self.pending:
                self.client.write(self.pending)
            self.pending = b""
            self.complete = True
            self._finish()
            return
        self._fail(UpstreamFailed("upstream failed: closed mid-response"))

    # llhttp callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:
            self.extra = True
            return
        self.response = Head()
        self.head_done = False

    def on_status(self, status: bytes) -> None:
        assert self.response is not None
        self.response.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        response = self.response
        assert response is not None
        response.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        response, parser = self.response, self.parser
        if self.complete or response is None or parser is None:
            return
        status = parser.get_status_code()
        response.status = status
        response.version = parser.get_http_version()
        response.keep_alive = parser.should_keep_alive()
        response.frame()
        self.head_done = True
        if status < 200:
            if status == 101:
                raise UpstreamFailed("101 to a request that asked for no upgrade")
            self.informational = True
            if self.head.version == "1.1":
                self.client.write(response_head(response, self.head)[0])
            return
        outcome = self.outcome
        outcome.upstream_time = time.monotonic() - self.sent_at
        self.pending, self.mode = response_head(response, self.head)
        outcome.status, outcome.started = status, True
        if self.mode == "close":
            outcome.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.outcome.sent += len(body)
        if self.mode == "chunked":
            body = b"%x\r\n%s\r\n" % (len(body), body)
        if self.pending:
            body, self.pending = self.pending + body, b""
        self.client.write(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.informational:
            self.informational = False  # the final response follows
            self.head_bytes = 0
            return
        data = self.pending + b"0\r\n\r\n" if self.mode == "chunked" else self.pending
        if data:
            self.client.write(data)
        self.pending = b""
        self.complete = True

    # the end ------------------------------------------------------------------------------
    def _finish(self) -> None:
        """Pool the upstream connection only after a clean, complete exchange."""
        conn, response = self.conn, self.response
        assert conn is not None and response is not None
        self._end()
        self._stop(conn)
        framed = response.length is not None or response.chunked
        clean = (
            response.keep_alive
            and not self.extra
            and (framed or response.status in NO_BODY_STATUSES)
        )
        if clean:
            self.pool.put(conn)
        else:
            conn.close()
        self.site.fast_done(self.client, self.head, self.upstream, self.outcome)
        self.client.exchange_done(self.outcome.keep_alive)

    def _fail(self, exc: UpstreamFailed) -> None:
        self._end()
        if self.conn is not None:
            self._stop(self.conn)
            self.conn.close()
        outcome = self.outcome
        outcome.keep_alive = False
        outcome.failure = "upstream_timeout" if exc.timeout else "upstream_error"
        if not outcome.started:
            outcome.status = 504 if exc.timeout else 502
            self.client.write(json_reply(outcome.status, {"error": str(exc)}, False))
        self.site.fast_done(self.client, self.head, self.upstream, outcome)
        self.client.exchange_done(False)

    def client_lost(self) -> None:
        """The client went away mid-exchange: the response is unread, the connection done."""
        if self.done:
            return
        self._end()
        if self.connecting is not None:
            self.connecting.cancel()
        if self.conn is not None:
            self._stop(self.conn)
            self.conn.close()
        self.outcome.keep_alive = False
        self.site.fast_done(self.client, self.head, self.upstream, self.outcome)

    def _end(self) -> None:
        self.done = True
        # The parser holds this exchange's callbacks: without this cycle every request would
        # be left for the cyclic garbage collector (about a quarter of the relay's CPU).
        self.parser = None

    def _stop(self, conn: UpstreamConn) -> None:
        conn.protocol.sink = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.paused:
            self.paused = False
            conn.transport.resume_reading()

    # flow control: the client's transport asks -------------------------------------------
    def pause(self) -> None:
        if self.conn is not None and not self.paused and not self.done:
            self.paused = True
            self.conn.transport.pause_reading()

    def resume(self) -> None:
        if self.conn is not None and self.paused and not self.done:
            self.paused = False
            self.conn.transport.resume_reading()
            self.last_read = self.loop.time()
