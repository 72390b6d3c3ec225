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

# Idle connections kept per upstream address; more are closed (the app has workers to spare).
MAX_IDLE = 64


class UpstreamConn:
    def __init__(
        self, address: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.address = address
        self.reader = reader
        self.writer = writer

    @property
    def usable(self) -> bool:
        """Still open, and the upstream sent nothing unasked while it sat idle."""
        return (
            not self.writer.is_closing() and not self.reader.at_eof() and not self.reader._buffer  # type: ignore[attr-defined]
        )

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
        connections = self.idle.get(address)
        while connections and not fresh:
            conn = connections.pop()
            if conn.usable:
                return conn, True
            conn.close()
        async with asyncio.timeout(connect_timeout):
            reader, writer = await asyncio.open_connection(*address, limit=256 * 1024)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # A request goes out in one write; Nagle would hold it for the previous ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return UpstreamConn(address, reader, writer), False

    def put(self, conn: UpstreamConn) -> None:
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
