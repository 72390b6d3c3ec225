"""One client connection of a listener, served in two modes.

**Fast mode** (``ClientProtocol`` itself): the transport's callbacks feed llhttp directly, and a
complete body-less request that the routed door only needs relayed goes to a ``FastExchange``
(``fastpath.py``), which answers it from the upstream's callbacks. No task wakes up and no stream
buffers the bytes: that is what a relay of small requests spends its time on (uvicorn's shape).

**Streamed mode** (``Connection.serve``, a task over asyncio streams): everything else — bodies,
upgrades, 1xx for a body, holds, ``/_deploy/``, answers of the door's own, errors to refuse.
Both modes share the one ``MessageReader``, so a request parsed in fast mode is served in
streamed mode exactly as if that task had read it. The connection goes back to fast mode after a
streamed request when nothing is left half-read (the stream's buffer, the parser, the queue).

The limits are the same in both: the head timeout from its first byte (slowloris), the idle
timeout between requests, the head size (431), one read's worth of input buffered while a
response is pending, and reading stops while the client does not take its responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Coroutine
from typing import Any, cast

from shiplane.frontdoor import replies
from shiplane.frontdoor.fastpath import FastExchange, FastSite
from shiplane.frontdoor.replies import json_reply, reply
from shiplane.frontdoor.sides import Challenges, ListenerSide
from shiplane.frontdoor.wire import END, READ_SIZE, Head, HttpError, MessageReader, PeerClosed

LINGER = 2.0  # seconds a refused client's remaining input is read and dropped
# Body-less requests that may take the fast path. HEAD is left to the streamed relay: its
# response carries a length without a body, which a response parser cannot know by itself.
FAST_METHODS = frozenset({b"GET", b"OPTIONS", b"DELETE", b"TRACE"})


class Connection:
    """One client connection in streamed mode: reads requests in order and hands each to its
    site, until the connection closes or ``owner.take_back()`` returns it to fast mode."""

    def __init__(
        self,
        listener: ListenerSide,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        msgs: MessageReader | None = None,
        owner: ClientProtocol | None = None,
    ) -> None:
        self.listener = listener
        self.msgs = msgs or MessageReader(reader, response=False, max_head=listener.limits.max_head)
        self.writer = writer
        self.peer = peer
        self.scheme = b"https" if listener.ssl_context is not None else b"http"
        self.owner = owner

    async def serve(self) -> None:
        limits, log = self.listener.limits, self.listener.log
        handed_back = False
        try:
            while True:
                try:
                    head = await self.msgs.next_head(limits.idle_timeout, limits.header_timeout)
                except TimeoutError:
                    if self.msgs.in_message:
                        log.trip("header_timeout", f"{self.peer} sent no full head in time")
                        await self.refuse(408, "request head timed out")
                    return
                except PeerClosed:
                    return
                except HttpError as exc:
                    log.trip(exc.kind, f"{self.peer}: {exc.reason}")
                    await self.refuse(exc.status, exc.reason)
                    return
                if self.listener.leaving:
                    head.keep_alive = False  # see ``ClientProtocol._next``
                keep = await self.dispatch(head)
                if self.writer.transport.get_write_buffer_size():
                    async with asyncio.timeout(limits.idle_timeout):
                        await self.writer.drain()  # a client that never reads is let go
                if not keep:
                    return
                if self.owner is not None and self.owner.take_back():
                    handed_back = True
                    return
        except (ConnectionError, TimeoutError, OSError):
            return
        finally:
            if not handed_back:
                self.writer.close()

    async def dispatch(self, head: Head) -> bool:
        """Answer one request: an ACME challenge, a 421 for a host nobody claimed, or the
        routed site's answer. False when the connection must close afterwards."""
        challenges = self.listener.challenges
        if challenges is not None and challenges.owns(head.target):
            return self.answer_challenge(challenges, head)
        site = self.listener.route(head)
        if site is None:
            self.listener.log.trip(
                "misdirected", f"{self.peer} asked for host {head.get(b'host')!r}"
            )
            keep = head.keep_alive and not head.has_body and not head.upgrade
            self.writer.write(
                replies.refused(self.listener, self.peer, 421, "no site for this host", head, keep)
            )
            return keep
        return await site.handle(self, head)

    def answer_challenge(self, challenges: Challenges, head: Head) -> bool:
        keep = head.keep_alive and not head.has_body and not head.upgrade
        body = challenges.answer(head.target)
        if body is None:
            self.writer.write(json_reply(404, {"error": "no such challenge"}, keep))
        else:
            self.writer.write(reply(200, body, b"text/plain", keep))
        return keep

    async def refuse(self, status: int, reason: str) -> None:
        """Answer and close without losing the answer: closing a socket with unread input
        makes the kernel send a reset, which can destroy the answer before the client reads
        it, so the input is read and dropped for a moment first (nginx's lingering close)."""
        self.writer.write(replies.refused(self.listener, self.peer, status, reason))
        with contextlib.suppress(ConnectionError, TimeoutError, OSError, RuntimeError):
            async with asyncio.timeout(LINGER):
                await self.writer.drain()
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                while await self.msgs.reader.read(READ_SIZE):
                    pass

    async def refuse_and_close(self, status: int, reason: str) -> None:
        try:
            await self.refuse(status, reason)
        finally:
            self.writer.close()


class ClientProtocol(asyncio.StreamReaderProtocol):
    """A listener's client connection; see the module docstring."""

    send: Callable[[bytes], object]  # the transport's write, set once connected

    def __init__(self, listener: ListenerSide) -> None:
        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader(limit=256 * 1024, loop=loop)
        super().__init__(self.reader, loop=loop)
        self.loop = loop
        self.listener = listener
        self.limits = listener.limits
        self.msgs = MessageReader(self.reader, response=False, max_head=self.limits.max_head)
        self.scheme = b"https" if listener.ssl_context is not None else b"http"
        self.peer = ""
        self.transport: asyncio.Transport | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.conn: Connection | None = None  # the streamed mode, made when first needed
        self.task: asyncio.Task[None] | None = None
        self.exchange: FastExchange | None = None
        self.fast = True
        self.admitted = False
        self.eof = False
        self.stash = b""  # input that came while a fast response was pending (reading paused)
        self.reading_paused = False
        self.head_started = False
        self.deadline = math.inf
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = math.inf

    # transport callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass asyncio's
        self.transport = transport
        self.send = transport.write  # the fast exchange's writes, without a call of ours
        self.writer = asyncio.StreamWriter(transport, self, self.reader, self.loop)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        if not self.listener.admit(self.peer, self.writer):
            self.writer.write(replies.over_capacity(self.listener, self.peer))
            transport.close()  # the short answer fits the socket buffer: no lingering
            return
        self.admitted = True
        self._idle()

    def data_received(self, data: bytes) -> None:
        if not self.fast:
            super().data_received(data)
        elif self.exchange is not None:
            # Pipelined input while a response is pending: keep this read, read no more.
            self.stash += data
            self._pause_reading()
        else:
            self._feed(data)

    def eof_received(self) -> bool:
        if not self.fast:
            return bool(super().eof_received())
        self.eof = True
        if self.exchange is None:
            return False  # the transport closes: nothing is pending for this client
        return not self._over_ssl  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._disarm()
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.client_lost()
        if self.admitted and self.writer is not None:
            self.admitted = False
            self.listener.leave(self.peer, self.writer)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.exchange is not None:
            self.exchange.pause()

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.exchange is not None:
            self.exchange.resume()

    # fast mode ----------------------------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        try:
            self.msgs.feed(data)
        except HttpError as exc:
            self.listener.log.trip(exc.kind, f"{self.peer}: {exc.reason}")
            self._stream(self._connection().refuse_and_close(exc.status, exc.reason))
            return
        self._next()

    def _next(self) -> None:
        """Serve the next queued request, or wait for one with the right timer."""
        msgs = self.msgs
        events = msgs.events
        while events and events[0][0] == END:
            events.popleft()  # the end of a body-less request already answered
        if events:
            head = events[0][1]
            assert isinstance(head, Head)
            if self.listener.leaving:
                # The answer says "connection: close": a client reusing the connection after a
                # bare close would race the FIN with its next request.
                head.keep_alive = False
            if len(events) >= 2 and events[1][0] == END and self._relay_fast(head):
                return
            self._stream(self._connection().serve())
        elif msgs.in_message and not self.head_started:
            self.head_started = True  # the head's own timer runs from its first byte
            self._arm(self.limits.header_timeout)

    def _relay_fast(self, head: Head) -> bool:
        if head.has_body or head.upgrade or head.method not in FAST_METHODS:
            return False
        listener = self.listener
        challenges = listener.challenges
        if challenges is not None and challenges.owns(head.target):
            return False
        site: FastSite | None = listener.route(head)  # type: ignore[assignment]
        route = getattr(site, "fast_route", None)
        if route is None:
            return False
        found = route(self, head)
        if found is None:
            return False
        upstream, request = found
        events = self.msgs.events
        events.popleft()
        events.popleft()
        self.deadline = math.inf  # the exchange sets its own (``wake_at``)
        self.exchange = FastExchange(self, site, head, upstream, request)  # type: ignore[arg-type]
        self.exchange.begin()
        return True

    def exchange_done(self, keep: bool) -> None:
        """Called by the fast exchange once its response is written (or failed)."""
        self.exchange = None
        transport = self.transport
        assert transport is not None
        if not keep:
            transport.close()
        elif self.eof:
            # A client that half-closed after pipelining: the streamed mode answers what it
            # sent and then ends, as it would have had it read it.
            self._stream(self._connection().serve())
            self.reader.feed_eof()
        elif self._paused:  # type: ignore[attr-defined]
            self._stream(self._drain_then_serve())
        else:
            self._idle()

    def _idle(self) -> None:
        """Between requests: the idle timer runs until a head begins."""
        self.head_started = False
        self.wake_at(self.loop.time() + self.limits.idle_timeout)
        data, self.stash = self.stash, b""
        self._resume_reading()
        if data:
            self._feed(data)
        elif self.msgs.events or self.msgs.in_message:
            self._next()

    def idle_for(self) -> float:
        """Seconds this connection has waited for a request with nothing read of it (0: busy):
        a leaving front-door worker closes those that waited a while."""
        if not self.fast or self.exchange is not None or self.msgs.in_message or self.stash:
            return 0.0
        if self.deadline == math.inf:
            return 0.0
        # Idle, the timer runs out idle_timeout after the wait began (see ``_idle``).
        return self.loop.time() - (self.deadline - self.limits.idle_timeout)

    # timers: one handle per connection, moved lazily (re-armed only when it fires early) ----
    def _arm(self, seconds: float) -> None:
        self.wake_at(self.loop.time() + seconds)

    def wake_at(self, when: float) -> None:
        """The timer fires no later than ``when`` (while a fast exchange is pending, for it)."""
        self.deadline = when
        if self.timer is not None and self.timer_at <= when:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self._expired)
        self.timer_at = when

    def _disarm(self) -> None:
        self.deadline = math.inf

    def _expired(self) -> None:
        self.timer = None
        if not self.fast or self.deadline == math.inf:
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._expired)
            self.timer_at = self.deadline
            return
        if self.exchange is not None:
            again = self.exchange.timer_fired()
            if again:
                self.wake_at(again)
            return
        if self.msgs.in_message:
            self.listener.log.trip("header_timeout", f"{self.peer} sent no full head in time")
            self._stream(self._connection().refuse_and_close(408, "request head timed out"))
        elif self.transport is not None:
            self.transport.close()

    # streamed mode ------------------------------------------------------------------------
    def _connection(self) -> Connection:
        if self.conn is None:
            assert self.writer is not None
            self.conn = Connection(
                self.listener, self.reader, self.writer, self.peer, self.msgs, owner=self
            )
        return self.conn

    def _stream(self, work: Coroutine[Any, Any, None]) -> None:
        """Hand the connection to a task over the streams from here on."""
        self.fast = False
        self._disarm()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.stash:
            self.reader.feed_data(self.stash)
            self.stash = b""
        self._resume_reading()
        self.task = self.loop.create_task(work)
        self.task.add_done_callback(self._stream_ended)

    def _stream_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self.loop.call_exception_handler(
            {"message": "front door connection failed", "exception": task.exception()}
        )
        if self.transport is not None:
            self.transport.abort()

    async def _drain_then_serve(self) -> None:
        assert self.writer is not None
        try:
            async with asyncio.timeout(self.limits.idle_timeout):
                await self.writer.drain()  # a client that never reads is let go
        except (ConnectionError, TimeoutError, OSError):
            self.writer.close()
            return
        await self._connection().serve()

    def take_back(self) -> bool:
        """Back to fast mode after a streamed request, when nothing is left half-read."""
        reader, msgs = self.reader, self.msgs
        if (
            reader._buffer  # type: ignore[attr-defined]
            or reader.at_eof()
            or reader.exception() is not None
            or msgs.events
            or msgs.in_message
            or msgs.upgraded is not None
            or self.transport is None
            or self.transport.is_closing()
        ):
            return False
        self.fast = True
        self.task = None
        self._idle()
        return True

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
