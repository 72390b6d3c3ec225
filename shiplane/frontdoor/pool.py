"""Keep-alive connections to upstream instances.

A connection goes back to the pool only when the exchange on it ended cleanly: the request was
sent whole and the response was read to its last byte, with nothing further received. Anything
else (an error, a timeout, a response cut short, bytes after the response, an upgrade) closes
it. Putting back a connection with a response still unread is how one user's answer reaches
another user's request; this rule is what prevents it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Protocol

# Idle connections kept per upstream address; more are closed (the app has workers to spare).
MAX_IDLE = 64


class Sink(Protocol):
    """Who takes an upstream connection's input on the relay's callback path (``fastpath``)."""

    def upstream_data(self, data: bytes) -> None: ...

    def upstream_lost(self) -> None: ...


class UpstreamProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol whose input goes straight to a ``Sink`` while one is set: the relay's
    fast path reads a response in the transport's callback, without a task wakeup. Without a
    sink (idle in the pool, or in a streamed exchange) it is an ordinary stream, so an idle
    connection's unasked bytes or EOF still show in ``UpstreamConn.usable``."""

    sink: Sink | None = None

    def data_received(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink.upstream_data(data)
        else:
            super().data_received(data)

    def eof_received(self) -> bool:
        if self.sink is not None:
            self.sink.upstream_lost()
            return False
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        sink, self.sink = self.sink, None
        super().connection_lost(exc)
        if sink is not None:
            sink.upstream_lost()


class UpstreamConn:
    def __init__(
        self,
        address: tuple[str, int],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        protocol: UpstreamProtocol,
        transport: asyncio.Transport,
    ) -> None:
        self.address = address
        self.reader = reader
        self.writer = writer
        self.protocol = protocol
        self.transport = transport  # pause/resume reading: the fast path's flow control

    @property
    def usable(self) -> bool:
        """Still open, and the upstream sent nothing unasked while it sat idle."""
        reader = self.reader
        # at_eof() and is_closing() spelled out: this runs twice per relayed request.
        return not (self.transport.is_closing() or reader._eof or reader._buffer)  # type: ignore[attr-defined]

    def close(self) -> None:
        transport = self.writer.transport
        with contextlib.suppress(Exception):
            transport.abort()  # no lingering: its state is unknown


class Pool:
    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[UpstreamConn]] = {}

    async def get(
        self, address: tuple[str, int], connect_timeout: float, fresh: bool = False
    ) -> tuple[UpstreamConn, bool]:
        """A connection to ``address`` and whether it was pooled (and so may be stale)."""
        if not fresh:
            conn = self.take(address)
            if conn is not None:
                return conn, True
        return await self.connect(address, connect_timeout), False

    def take(self, address: tuple[str, int]) -> UpstreamConn | None:
        """An idle pooled connection to ``address``, if one is still usable."""
        connections = self.idle.get(address)
        while connections:
            conn = connections.pop()
            if conn.usable:
                return conn
            conn.close()
        return None

    async def connect(self, address: tuple[str, int], connect_timeout: float) -> UpstreamConn:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=256 * 1024, loop=loop)
        protocol = UpstreamProtocol(reader, loop=loop)
        async with asyncio.timeout(connect_timeout):
            transport, _ = await loop.create_connection(lambda: protocol, *address)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A request goes out in one write; Nagle would hold it for the previous ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return UpstreamConn(address, reader, writer, protocol, transport)

    def put(self, conn: UpstreamConn) -> None:
        conn.protocol.sink = None
        connections = self.idle.setdefault(conn.address, [])
        if len(connections) >= MAX_IDLE or not conn.usable:
            conn.close()
            return
        connections.append(conn)

    def discard(self, address: tuple[str, int]) -> None:
        """Close the idle connections to an instance that is going away."""
        for conn in self.idle.pop(address, []):
            conn.close()

    def close(self) -> None:
        for address in list(self.idle):
            self.discard(address)
