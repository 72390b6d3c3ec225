"""Relaying one request to an upstream and its response back, streaming both bodies.

The request body (client → upstream) and the response (upstream → client) run side by side
when the request has a body: that is what ``Expect: 100-continue`` needs (the client sends the
body only after the upstream's 100, which is forwarded as it comes), and an upstream may answer
before it read the whole body. Informational (1xx) responses are forwarded and the final
response is read after them; the exchange ends only with the final response's last byte.
``101 Switching Protocols`` turns the connection into a byte tunnel (WebSockets).

Framing towards the client is the door's own: a response with a length keeps it, a chunked
one is re-chunked (de-chunked by llhttp, so its chunk sizes are checked), one delimited by
close is relayed and the client connection closed after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

from shiplane.frontdoor.pool import Pool, UpstreamConn
from shiplane.frontdoor.replies import json_reply
from shiplane.frontdoor.settings import Limits
from shiplane.frontdoor.wire import (
    BODY,
    END,
    HEAD,
    HOP_BY_HOP,
    Head,
    HttpError,
    MessageReader,
    PeerClosed,
)

NO_BODY_STATUSES = frozenset({204, 304})
FLUSH_AT = 256 * 1024  # wait for the client to take the response when this much is queued
# Requests that may be sent again on a fresh connection when a pooled one turns out to have been
# closed by the upstream meanwhile (its keep-alive timeout).
FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host")
FORWARDED_SET = frozenset(FORWARDED)
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


class ClientSide(Protocol):
    msgs: MessageReader
    writer: asyncio.StreamWriter
    peer: str


class TunnelRegistry(Protocol):
    def opened(self, instance_id: str, closer: asyncio.StreamWriter) -> None: ...

    def closed(self, instance_id: str, closer: asyncio.StreamWriter) -> None: ...


@dataclass(slots=True)
class Outcome:
    status: int = 0
    sent: int = 0  # response body bytes written to the client
    upstream_time: float = 0.0  # seconds from sending the request to the response head
    keep_alive: bool = True  # the client connection may carry another request
    started: bool = False  # the response head went to the client
    failure: str = ""  # the stats counter of an upstream failure, if any


NOTHING: frozenset[bytes] = frozenset()


def connection_tokens(head: Head) -> frozenset[bytes]:
    """Headers the sender marked hop-by-hop in its Connection headers."""
    raw = head.connection
    if not raw or raw.lower() in (b"keep-alive", b"close"):
        return NOTHING  # the usual case: nothing beyond HOP_BY_HOP, and no set to build
    return frozenset(token.strip().lower() for token in raw.split(b",") if token.strip())


def request_bytes(head: Head, forwarded: bytes, keep_forwarded: bool) -> bytes:
    """The request head for the upstream; ``forwarded``: the door's X-Forwarded-* lines."""
    drop = connection_tokens(head)
    # Names dropped whatever their value; client-sent X-Forwarded-* are checked below.
    skip = HOP_BY_HOP | drop if drop else HOP_BY_HOP
    if keep_forwarded:
        skip = skip | FORWARDED_SET  # replaced by the extended values in ``forwarded``
    parts = [head.method, b" ", head.target, b" HTTP/1.1\r\n"]
    append = parts.append
    for name, value in head.headers:
        if name in skip:
            continue
        if not keep_forwarded and name.startswith(b"x-forwarded-"):
            continue  # the door sets these; a client must not choose its own address
        parts += (name, b": ", value, b"\r\n")
    append(forwarded)
    if head.chunked:
        append(b"transfer-encoding: chunked\r\n")
    elif head.length is not None:
        append(b"content-length: %d\r\n" % head.length)
    if head.upgrade:
        append(b"upgrade: %s\r\nconnection: upgrade\r\n\r\n" % (head.get(b"upgrade") or b""))
    else:
        append(b"connection: keep-alive\r\n\r\n")
    return b"".join(parts)


def response_head(
    response: Head, request: Head, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[bytes, str]:
    """The head for the client and how its body is framed: none | length | chunked | close.
    ``extra`` headers (HSTS) go on final answers, replacing the upstream's of the same name."""
    status = response.status
    if request.method == b"HEAD" or status in NO_BODY_STATUSES or status < 200:
        mode = "none"
    elif response.chunked:
        mode = "chunked" if request.version == "1.1" else "close"
    elif response.length is not None:
        mode = "length"
    else:
        mode = "close"
    drop = connection_tokens(response)
    final = status >= 200 and status != 101
    replaced = frozenset(name for name, _ in extra) if final and extra else NOTHING
    skip = HOP_BY_HOP | drop | replaced if drop or replaced else HOP_BY_HOP
    keep_length = mode in ("none", "length")
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, response.reason)]
    append = lines.append
    for name, value in response.headers:
        if name in skip:
            # A HEAD or 304 answer keeps its Content-Length: it describes the entity.
            if name == b"content-length" and keep_length and name not in replaced:
                append(b"content-length: " + value + b"\r\n")
            continue
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    if final:
        lines += [b"%s: %s\r\n" % pair for pair in extra]
    if status == 101:
        lines.append(
            b"upgrade: %s\r\nconnection: upgrade\r\n\r\n" % (response.get(b"upgrade") or b"")
        )
    elif status < 200:
        lines.append(b"\r\n")
    else:
        if mode == "chunked":
            lines.append(b"transfer-encoding: chunked\r\n")
        keep = mode != "close" and request.keep_alive and not request.upgrade
        lines.append(b"connection: keep-alive\r\n\r\n" if keep else b"connection: close\r\n\r\n")
    return b"".join(lines), mode


class Exchange:
    """One request relayed to ``address``; ``run`` returns what the access log records."""

    def __init__(
        self,
        client: ClientSide,
        head: Head,
        address: tuple[str, int],
        pool: Pool,
        limits: Limits,
        forwarded: bytes,
        keep_forwarded: bool,
        response_headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.client = client
        self.response_headers = response_headers
        self.head = head
        self.address = address
        self.pool = pool
        self.limits = limits
        self.request = request_bytes(head, forwarded, keep_forwarded)
        self.outcome = Outcome(keep_alive=head.keep_alive and not head.upgrade)
        self.upstream: UpstreamConn | None = None
        self.response: MessageReader | None = None
        self.timed_out = False
        self.idempotent = head.method in IDEMPOTENT

    async def run(self, instance_id: str, tunnels: TunnelRegistry) -> Outcome:
        head, outcome = self.head, self.outcome
        if head.length is not None and head.length > self.limits.max_body:
            raise HttpError(413, "request body too large", "body_too_large")
        try:
            await self._connect_and_relay()
        except HttpError:
            self._close_upstream()
            raise  # the client's fault: answered by the door
        except (TimeoutError, PeerClosed, HttpErrorFromUpstream, OSError) as exc:
            self._close_upstream()
            outcome.keep_alive = False
            timeout = isinstance(exc, TimeoutError)
            outcome.failure = "upstream_timeout" if timeout else "upstream_error"
            if not outcome.started:
                outcome.status = 504 if timeout else 502
                error = "upstream timed out" if timeout else f"upstream failed: {exc}"
                self.client.writer.write(
                    json_reply(outcome.status, {"error": error}, False, self.response_headers)
                )
            return outcome
        if outcome.status == 101 and self.upstream is not None:
            await self._tunnel(instance_id, tunnels)
        return outcome

    async def _connect_and_relay(self) -> None:
        limits = self.limits
        has_body = self.head.has_body
        for attempt in (1, 2):
            # A body cannot be sent twice, and a POST may have been acted on before a pooled
            # connection turned out dead: those ride a fresh connection from the start.
            fresh = attempt == 2 or has_body or self.head.upgrade or not self.idempotent
            conn, pooled = await self.pool.get(self.address, limits.upstream_connect_timeout, fresh)
            self.upstream = conn
            self.response = MessageReader(conn.reader, response=True, max_head=1 << 20)
            started = time.monotonic()
            conn.writer.write(self.request)
            if has_body:
                await self._relay_with_body()
            else:
                try:
                    await self._relay_response()
                except (PeerClosed, ConnectionError):
                    if not pooled or self.outcome.started or self.response.head is not None:
                        raise
                    self._close_upstream()  # stale keep-alive connection: once more, fresh
                    continue
            self.outcome.upstream_time = self.outcome.upstream_time or time.monotonic() - started
            self._finish()
            return

    async def _relay_with_body(self) -> None:
        sender = asyncio.create_task(self._send_body())
        receiver = asyncio.create_task(self._relay_response())
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if sender in done:
                if sender.exception() is not None:
                    sender.result()  # raises: the client's fault (413, 400, timeout, gone)
                await receiver  # raises an upstream failure
            else:
                receiver.result()  # raises an upstream failure
                # Answered before the body was read (early 413, 401...): what the client still
                # sends is unread, so neither connection can carry another request.
                self.outcome.keep_alive = False
                self._close_upstream()
        finally:
            for task in (sender, receiver):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _send_body(self) -> None:
        assert self.upstream is not None
        msgs, writer = self.client.msgs, self.upstream.writer
        chunked, total, limits = self.head.chunked, 0, self.limits
        while True:
            if msgs.events:
                kind, item = msgs.events.popleft()
            else:
                try:
                    async with asyncio.timeout(limits.body_timeout):
                        kind, item = await msgs.next_event()
                except TimeoutError:
                    raise HttpError(408, "request body timed out", "body_timeout") from None
            if kind == BODY:
                assert isinstance(item, bytes)
                total += len(item)
                if total > limits.max_body:
                    raise HttpError(413, "request body too large", "body_too_large")
                writer.write(b"%x\r\n%s\r\n" % (len(item), item) if chunked else item)
                await writer.drain()  # flow control: read no faster than the upstream takes
            elif kind == END:
                if chunked:
                    writer.write(b"0\r\n\r\n")
                await writer.drain()
                return

    async def _relay_response(self) -> None:
        response, client, outcome = self.response, self.client.writer, self.outcome
        assert response is not None
        timeout = self.limits.upstream_read_timeout
        loop = asyncio.get_running_loop()
        mode, informational = "none", False
        pending = b""  # the final head, sent with the first body bytes: one write, not two
        while True:
            if response.events:
                kind, item = response.events.popleft()
            else:
                if pending and not response.events:
                    client.write(pending)  # the body is late: let the client see the head
                    pending = b""
                # A timer that aborts the upstream connection: cheaper per read than
                # asyncio.timeout, and the connection is done for anyway when it fires.
                watchdog = loop.call_later(timeout, self._read_timed_out)
                try:
                    kind, item = await response.next_event()
                except HttpError as exc:
                    raise HttpErrorFromUpstream(str(exc)) from exc
                finally:
                    watchdog.cancel()
                    if self.timed_out:
                        raise TimeoutError("upstream read timed out")
            if kind == HEAD:
                assert isinstance(item, Head)
                informational = 100 <= item.status < 200 and item.status != 101
                if informational and self.head.version != "1.1":
                    continue  # HTTP/1.0 clients know no 1xx
                data, mode = response_head(item, self.head, self.response_headers)
                outcome.status, outcome.started = item.status, not informational
                if informational or item.status == 101 or self.head.method == b"HEAD":
                    client.write(data)
                    if informational:
                        await client.drain()  # the client waits for it to send its body
                        continue
                    return
                pending = data
                if mode == "close":
                    outcome.keep_alive = False
            elif kind == BODY:
                assert isinstance(item, bytes)
                outcome.sent += len(item)
                if mode == "chunked":
                    item = b"%x\r\n%s\r\n" % (len(item), item)
                client.write(pending + item if pending else item)
                pending = b""
                if client.transport.get_write_buffer_size() > FLUSH_AT:
                    await client.drain()
            elif informational:
                informational = False  # the end of a 1xx: the final response follows
            else:
                client.write(pending + b"0\r\n\r\n" if mode == "chunked" else pending)
                return

    def _read_timed_out(self) -> None:
        self.timed_out = True
        if self.upstream is not None:
            self.upstream.close()

    def _finish(self) -> None:
        """Pool the upstream connection only after a clean, complete exchange."""
        conn, response = self.upstream, self.response
        if conn is None or response is None:
            return
        head = response.head
        clean = (
            self.outcome.status >= 200
            and self.outcome.status != 101
            and self.head.method != b"HEAD"
            and head is not None
            and head.keep_alive
            and (head.length is not None or head.chunked or self.outcome.status in NO_BODY_STATUSES)
            and not response.events
            and not response.in_message
            and response.upgraded is None
        )
        if clean:
            self.pool.put(conn)
        elif self.outcome.status != 101:
            self._close_upstream()
        self.upstream = None if self.outcome.status != 101 else conn

    def _close_upstream(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    async def _tunnel(self, instance_id: str, tunnels: TunnelRegistry) -> None:
        """Relay bytes both ways after a 101 until either side closes."""
        upstream, response = self.upstream, self.response
        assert upstream is not None and response is not None
        client = self.client
        self.outcome.keep_alive = False
        client.writer.write(response.upgraded or b"")
        upstream.writer.write(client.msgs.upgraded or b"")
        tunnels.opened(instance_id, client.writer)
        try:
            await asyncio.gather(
                pump(client.msgs.reader, upstream.writer),
                pump(upstream.reader, client.writer),
            )
        finally:
            tunnels.closed(instance_id, client.writer)
            upstream.close()
            self.upstream = None


class HttpErrorFromUpstream(Exception):
    """The upstream sent something that is not HTTP: a 502 for the client."""


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Either side ending ends the tunnel: close both directions (a TCP close, no WS frame).
        with contextlib.suppress(Exception):
            writer.transport.abort()
        with contextlib.suppress(Exception):
            reader.feed_eof()
