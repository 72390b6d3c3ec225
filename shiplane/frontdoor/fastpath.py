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
- the response head is framed by ``response_head`` (the door's own framing), or, for the usual
  head, passed in the upstream's bytes with the same result (``plain_head``); a head over
  1 MiB or bytes that are not HTTP are a 502, silence longer than the read timeout a 504 (on
  the client connection's timer);
- the upstream is read no faster than the client takes the response.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Protocol

import httptools

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.exchange import NO_BODY_STATUSES, Outcome, response_head
from shiplane.frontdoor.plain_head import parse_head, plain_head
from shiplane.frontdoor.pool import Pool, UpstreamConn
from shiplane.frontdoor.replies import json_reply
from shiplane.frontdoor.settings import Limits
from shiplane.frontdoor.wire import Head

MAX_RESPONSE_HEAD = 1 << 20
SKIPPED = re.compile(rb"[\r\n]*")  # what llhttp passes over before a status line


class FastClient(Protocol):
    """What an exchange uses of its client connection (``client.ClientProtocol``)."""

    loop: asyncio.AbstractEventLoop
    peer: str
    scheme: bytes

    send: Callable[[bytes], object]  # the client transport's write

    def wake_at(self, when: float) -> None:
        """Have the connection's timer call ``timer_fired`` no later than ``when``."""

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
        "framed",
        "head",
        "head_at",
        "head_bytes",
        "head_done",
        "informational",
        "last_read",
        "loop",
        "mode",
        "outcome",
        "parser",
        "parts",
        "paused",
        "pending",
        "pool",
        "pooled",
        "received",
        "request",
        "reusable",
        "sent_at",
        "site",
        "timeout",
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
        self.last_read = 0.0
        self.sent_at = 0.0
        self._reset()

    def _reset(self) -> None:
        # No on_header or on_status: llhttp then makes no Python call per header (plain_head).
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.parts: list[bytes] = []  # the response's reads from its start to its head's end
        self.head_bytes = 0
        self.head_at = 0  # where the response begins in ``parts`` (after a 1xx, not at 0)
        self.received = False  # any byte of a response
        self.head_done = False
        self.informational = False
        self.complete = False
        self.extra = False  # bytes after the response: the connection cannot be reused
        self.framed = False  # the body has a length or is chunked: it ends without a close
        self.reusable = False  # the upstream keeps the connection open after the response
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
        # The client connection's timer, not one of our own: one handle less per request.
        self.client.wake_at(self.last_read + self.timeout)

    def timer_fired(self) -> float:
        """The client's timer ran out while this exchange was pending: the next time to look
        again, or 0 when the upstream timed out (the exchange then failed)."""
        if self.done:
            return 0.0
        due = self.last_read + self.timeout
        now = self.loop.time()
        if self.paused:  # the client is slow, not the upstream
            due = now + self.timeout
        if now < due:
            return due
        self._fail(UpstreamFailed("upstream timed out", timeout=True))
        return 0.0

    # the response (pool.Sink) -------------------------------------------------------------
    def upstream_data(self, data: bytes) -> None:
        parser = self.parser
        if self.done or parser is None:
            return
        self.last_read = self.loop.time()
        self.received = True
        if not self.head_done:
            self.parts.append(data)
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
            self.client.send(self.pending)  # the body is late: let the client see the head
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
        if self.head_done and not self.informational and not self.framed:
            # A body delimited by the close: it ended, and so does the client connection.
            self.outcome.keep_alive = False
            if self.pending:
                self.client.send(self.pending)
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
        self.head_done = False

    def on_headers_complete(self) -> None:
        parser = self.parser
        if self.complete or parser is None:
            return
        parts = self.parts
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        self.parts = [raw]
        # llhttp accepted the head: it begins after the CRs and LFs llhttp skips before a
        # status line, and ends at the first empty line after that.
        skipped = SKIPPED.match(raw, self.head_at)
        start = skipped.end() if skipped else self.head_at
        end = raw.find(b"\r\n\r\n", start) + 2
        head = raw[start:end]
        status = parser.get_status_code()
        self.reusable = parser.should_keep_alive()
        self.head_done = True
        if status < 200:
            if status == 101:
                raise UpstreamFailed("101 to a request that asked for no upgrade")
            self.informational = True
            # The final response begins after it, maybe in this read: an offset, not a copy,
            # so that many 1xx in one read cost no more than one.
            self.head_at = end + 2
            self.head_bytes = len(raw) - self.head_at
            if self.head.version == "1.1":
                self.client.send(response_head(parse_head(head), self.head)[0])
            return
        self.parts, self.head_at = [], 0
        outcome = self.outcome
        outcome.upstream_time = time.monotonic() - self.sent_at
        outcome.status, outcome.started = status, True
        keep = self.head.keep_alive
        plain = None if status in NO_BODY_STATUSES else plain_head(head, keep)
        if plain is not None:
            self.pending, self.mode, self.framed = plain, "length", True
            return
        response = parse_head(head)
        self.pending, self.mode = response_head(response, self.head)
        self.framed = response.length is not None or response.chunked
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
        self.client.send(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.informational:
            self.informational = False  # the final response follows
            self.head_done = False
            return
        data = self.pending + b"0\r\n\r\n" if self.mode == "chunked" else self.pending
        if data:
            self.client.send(data)
        self.pending = b""
        self.complete = True

    # the end ------------------------------------------------------------------------------
    def _finish(self) -> None:
        """Pool the upstream connection only after a clean, complete exchange."""
        conn = self.conn
        assert conn is not None
        self._end()
        self._stop(conn)
        clean = (
            self.reusable
            and not self.extra
            and (self.framed or self.outcome.status in NO_BODY_STATUSES)
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
            self.client.send(json_reply(outcome.status, {"error": str(exc)}, False))
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
