"""HTTP/1.1 message framing for the front door, on httptools (llhttp, the parser Node.js ships).

Why httptools and not h11 or our own parser: llhttp is strict by default (it refuses bare LF,
NUL and other control bytes in headers, CL together with TE, duplicate Content-Length, obfuscated
Transfer-Encoding, bad chunk sizes: the request-smuggling set), it is maintained with Node.js,
and it runs in C. Measured on the 2-core session machine (``bench/frontdoor.py`` prints it first):
parsing a 204-byte request head takes 3.2 µs with httptools and 50 µs with h11 (pure Python), so
h11 alone would cost more per request than the whole relay does now. uvicorn made the same choice
(``uvicorn/protocols/http/httptools_impl.py``).

The parser is push-based: bytes read from a socket are fed in and callbacks fire. ``MessageReader``
turns the callbacks into a queue of events (a head, body pieces, the end of a message) that the
relay pulls from, reading more from the socket only when the queue is empty. So at most one
read's worth of bytes (64 KiB) waits in memory per connection, pipelined requests queue in order,
and a request body is streamed, never buffered whole.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import httptools

READ_SIZE = 64 * 1024
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
        b"transfer-encoding",
        b"content-length",
    }
)


class HttpError(Exception):
    """A request the door refuses: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, reason: str, kind: str = "bad_request") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kind = kind  # the FrontDoorStats counter this trips


class PeerClosed(Exception):
    """The other side closed (or reset) the connection mid-message."""


@dataclass(slots=True)
class Head:
    """A parsed request or response head; header names lowercased, values as sent."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    method: bytes = b""
    target: bytes = b""
    status: int = 0
    reason: bytes = b""
    version: str = "1.1"
    keep_alive: bool = True
    upgrade: bool = False
    size: int = 0  # bytes of request line/status and headers, for the head limit
    # Body framing, set once the head is complete (llhttp checked the digits and refused
    # Content-Length beside Transfer-Encoding).
    chunked: bool = False
    length: int | None = None
    has_body: bool = False
    connection: bytes = b""  # every Connection header's tokens, joined: what is hop-by-hop

    def get(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def frame(self) -> None:
        for key, value in self.headers:
            if key == b"content-length":
                self.length = int(value)
            elif key == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            elif key == b"connection":
                self.connection = self.connection + b"," + value if self.connection else value
        self.has_body = self.chunked or bool(self.length)


# Events in a reader's queue: a head, a piece of body, the end of a message.
HEAD, BODY, END = 0, 1, 2
Event = tuple[int, Head | bytes | None]


class MessageReader:
    """Reads HTTP messages from one stream through llhttp; see the module docstring."""

    def __init__(self, reader: asyncio.StreamReader, *, response: bool, max_head: int) -> None:
        self.reader = reader
        self.response = response
        self.max_head = max_head
        self.events: deque[Event] = deque()
        self.head: Head | None = None  # the message being parsed
        self.head_done = False
        self.unparsed = 0  # bytes fed since the current head began, until it completed
        self.upgraded: bytes | None = None  # bytes after an upgrade (they are not HTTP)
        self.in_message = False
        self._ended_here = False  # a message ended within the chunk being fed
        self._began_here: bool | None = None  # one began in it, and was it the chunk's first
        self._parser: httptools.HttpRequestParser | httptools.HttpResponseParser
        if response:
            self._parser = httptools.HttpResponseParser(self)
        else:
            self._parser = httptools.HttpRequestParser(self)

    # parser callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.head = Head()
        self.head_done = False
        self.in_message = True
        self.unparsed = 0
        # Whether all of the chunk being fed is this message's (no message ended before it in
        # the same chunk): then all of it counts against the head limit (see ``feed``).
        self._began_here = not self._ended_here

    def on_url(self, url: bytes) -> None:
        assert self.head is not None
        self.head.target += url
        self.head.size += len(url)

    def on_status(self, status: bytes) -> None:
        assert self.head is not None
        self.head.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.head is not None
        self.head.headers.append((name.lower(), value))
        self.head.size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        head = self.head
        assert head is not None
        parser = self._parser
        head.version = parser.get_http_version()
        head.keep_alive = parser.should_keep_alive()
        head.upgrade = parser.should_upgrade()
        if self.response:
            head.status = parser.get_status_code()  # type: ignore[union-attr]
        else:
            head.method = parser.get_method()  # type: ignore[union-attr]
        head.frame()
        self.head_done = True
        if head.size > self.max_head:
            raise HttpError(431, "request head too large", "head_too_large")
        self.events.append((HEAD, head))

    def on_body(self, body: bytes) -> None:
        self.events.append((BODY, body))

    def on_message_complete(self) -> None:
        self.in_message = False
        self._ended_here = True
        self.events.append((END, None))

    # reading -----------------------------------------------------------------------------
    async def next_head(self, idle_timeout: float, header_timeout: float) -> Head:
        """The next request head: the peer may stay silent ``idle_timeout`` seconds, then has
        ``header_timeout`` seconds from its first byte to finish the head (slowloris)."""
        loop = asyncio.get_running_loop()
        started = self.in_message
        async with asyncio.timeout(header_timeout if started else idle_timeout) as timer:
            while True:
                if self.events:
                    kind, head = self.events.popleft()
                    if kind == END:
                        continue  # the end of a request that had no body
                    assert kind == HEAD and isinstance(head, Head)  # bodies were read to the end
                    return head
                await self._fill()
                if self.in_message and not started:
                    started = True
                    timer.reschedule(loop.time() + header_timeout)

    async def next_event(self) -> Event:
        """The next event, reading more from the stream when none is queued. On EOF a
        close-delimited response body ends; anywhere else EOF raises ``PeerClosed``."""
        while not self.events:
            await self._fill()
        return self.events.popleft()

    async def _fill(self) -> None:
        if self.upgraded is not None:
            raise PeerClosed("the connection was upgraded")
        try:
            data = await self.reader.read(READ_SIZE)
        except ConnectionError as exc:
            raise PeerClosed(str(exc)) from exc
        if not data:
            if self.response and self.in_message and self.head_done and self._close_delimited():
                self.in_message = False
                self.events.append((END, None))
                return
            raise PeerClosed("closed mid-message" if self.in_message else "closed")
        self.feed(data)

    def feed(self, data: bytes) -> None:
        if not self.head_done:
            self.unparsed += len(data)
        self._ended_here, self._began_here = False, None
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self.upgraded = data[exc.args[0] :]
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HttpError):
                raise exc.__context__ from None
            raise
        except httptools.HttpParserError as exc:
            raise HttpError(400, f"malformed HTTP: {exc}") from exc
        if self._began_here is not None and not self.head_done and self.head is not None:
            # The head began inside this chunk, which on_message_begin's reset left uncounted:
            # all of it when it began the chunk, else (pipelined) its complete header lines.
            self.unparsed = len(data) if self._began_here else self.head.size
        # A head still incomplete after more than the limit: refuse before buffering more.
        if self.in_message and not self.head_done and self.unparsed > self.max_head:
            raise HttpError(431, "request head too large", "head_too_large")

    def _close_delimited(self) -> bool:
        head = self.head
        return head is not None and head.length is None and not head.chunked
