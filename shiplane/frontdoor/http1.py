"""The front door's HTTP/1.1 transport: asyncio streams, byte-level relaying.

A proxy written on a general HTTP client spends most of its time in that client; this one
parses only what routing needs (request line, headers, body framing) and relays bytes. Which
upstream serves, the hold, the in-flight count and the /_deploy/* answers belong to the door that
owns the transport, behind ``Router``; the transport owns its upstream connections (``Pool``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from shiplane.frontdoor.base import Upstream

MAX_HEAD = 64 * 1024
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"upgrade",
    b"transfer-encoding",
    b"content-length",
}
IDEMPOTENT = {b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"}
REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
}


class BadRequest(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request reaches no upstream, answered as JSON (made once, not per request)."""

    status: int
    payload: dict[str, object]


class Router(Protocol):
    """What the transport asks of the door that owns it, once per request."""

    async def begin(self) -> Upstream | Refusal:
        """The upstream for one request, counted in flight until ``end``; may wait (hold)."""

    def end(self, upstream: Upstream) -> None:
        """The request that ``begin`` sent to ``upstream`` is over, relayed or failed."""

    async def deploy_endpoint(
        self, path: str, client: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """The answer to a /_deploy/* request: (status, JSON body)."""


@dataclass
class Head:
    first: list[bytes]  # method, target, version  |  version, status, reason
    headers: list[tuple[bytes, bytes]]

    def get(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def chunked(self) -> bool:
        return b"chunked" in (self.get(b"transfer-encoding") or b"").lower()

    @property
    def length(self) -> int | None:
        raw = self.get(b"content-length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise BadRequest("bad content-length")
        return int(raw)

    def keep_alive(self, version: bytes) -> bool:
        connection = (self.get(b"connection") or b"").lower()
        if version == b"HTTP/1.0":
            return b"keep-alive" in connection
        return b"close" not in connection


def parse_head(raw: bytes) -> Head:
    lines = raw[:-4].split(b"\r\n")
    first = lines[0].split(b" ", 2)
    if len(first) != 3:
        raise BadRequest("bad first line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise BadRequest("bad header line")
        headers.append((name.lower(), value.strip()))
    return Head(first, headers)


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def read_body(reader: asyncio.StreamReader, head: Head) -> bytes:
    """The whole body, de-chunked (request bodies are small; they are sent with a length)."""
    if head.chunked:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = head.length
    return await reader.readexactly(length) if length else b""


async def relay_body(
    upstream: asyncio.StreamReader, client: asyncio.StreamWriter, head: Head, method: bytes
) -> bool:
    """Copy the response body as it arrives; True when the upstream connection can be reused."""
    status = int(head.first[1])
    if method == b"HEAD" or status in (204, 304) or 100 <= status < 200:
        return True
    if head.chunked:
        while True:
            size_line = await upstream.readuntil(b"\r\n")
            client.write(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    line = await upstream.readuntil(b"\r\n")
                    client.write(line)
                    if line == b"\r\n":
                        return True
            client.write(await upstream.readexactly(size + 2))
            await client.drain()
    length = head.length
    if length is not None:
        remaining = length
        while remaining:
            chunk = await upstream.read(min(remaining, 1 << 16))
            if not chunk:
                raise ConnectionError("upstream closed mid-body")
            client.write(chunk)
            remaining -= len(chunk)
            await client.drain()
        return True
    while chunk := await upstream.read(1 << 16):  # delimited by close
        client.write(chunk)
        await client.drain()
    return False


def response_bytes(status: int, payload: dict[str, object], keep_alive: bool) -> bytes:
    body = json.dumps(payload).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Status")),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: %s\r\n\r\n" % (b"keep-alive" if keep_alive else b"close"),
            body,
        ]
    )


class Pool:
    """Idle keep-alive connections per upstream address."""

    def __init__(self) -> None:
        self.idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
        self.idle = {}

    async def get(
        self, address: tuple[str, int], fresh: bool
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        connections = self.idle.get(address, [])
        while connections and not fresh:
            reader, writer = connections.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 5)
        return reader, writer, False

    def put(
        self, address: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.idle.setdefault(address, []).append((reader, writer))

    def close(self) -> None:
        for connections in self.idle.values():
            for _, writer in connections:
                writer.close()
        self.idle.clear()


class Relay:
    """Serves client connections for one door: /_deploy/* to the router, the rest upstream."""

    def __init__(self, router: Router, own_host: bytes) -> None:
        self.router = router
        self.own_host = own_host  # X-Forwarded-Host when the client sent no Host
        self.pool = Pool()

    def close(self) -> None:
        self.pool.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        client_host = peer[0] if peer else ""
        try:
            while True:
                try:
                    raw = await read_head(reader)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                try:
                    head = parse_head(raw)
                    _method, target, version = head.first
                    body = await read_body(reader, head)
                except (BadRequest, ValueError, asyncio.IncompleteReadError):
                    writer.write(response_bytes(400, {"error": "bad request"}, False))
                    await writer.drain()
                    return
                keep_alive = head.keep_alive(version)
                if target.startswith(b"/_deploy/"):
                    status, payload = await self.router.deploy_endpoint(
                        target.decode("latin-1").split("?")[0],
                        client_host,
                        {k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers},
                    )
                    writer.write(response_bytes(status, payload, keep_alive))
                else:
                    keep_alive = await self.proxy(head, body, writer, client_host) and keep_alive
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def proxy(
        self, head: Head, body: bytes, client: asyncio.StreamWriter, client_host: str
    ) -> bool:
        """Relay one request; False when the client connection must close afterwards."""
        upstream = await self.router.begin()  # once: the whole request goes to this instance
        if isinstance(upstream, Refusal):
            client.write(response_bytes(upstream.status, upstream.payload, True))
            return True
        try:
            method, target, _ = head.first
            address = (upstream.host, upstream.port)
            host = head.get(b"host") or self.own_host
            lines = [b"%s %s HTTP/1.1\r\n" % (method, target)]
            lines += [
                b"%s: %s\r\n" % (k, v)
                for k, v in head.headers
                if k not in HOP_BY_HOP and not k.startswith(b"x-forwarded-")
            ]
            lines += [
                b"x-forwarded-for: %s\r\n" % client_host.encode(),
                b"x-forwarded-proto: http\r\n",
                b"x-forwarded-host: %s\r\n" % host,
                b"content-length: %d\r\n" % len(body),
                b"connection: keep-alive\r\n\r\n",
            ]
            request = b"".join(lines) + body
            for attempt in (1, 2):
                # A non-idempotent request never rides a pooled connection that may be stale.
                fresh = attempt == 2 or method not in IDEMPOTENT
                try:
                    up_reader, up_writer, pooled = await self.pool.get(address, fresh)
                except (OSError, TimeoutError):
                    client.write(response_bytes(502, {"error": "upstream unreachable"}, True))
                    return True
                try:
                    up_writer.write(request)
                    await up_writer.drain()
                    response = parse_head(await read_head(up_reader))
                    break
                except (ConnectionError, asyncio.IncompleteReadError, BadRequest):
                    up_writer.close()
                    if not pooled:
                        client.write(response_bytes(502, {"error": "upstream failed"}, False))
                        return False
            status_line = b"HTTP/1.1 %s %s\r\n" % (response.first[1], response.first[2])
            out = [status_line]
            out += [
                b"%s: %s\r\n" % (k, v)
                for k, v in response.headers
                if k not in (b"connection", b"keep-alive")
            ]
            framed = response.chunked or response.length is not None
            out.append(
                b"connection: keep-alive\r\n\r\n" if framed else b"connection: close\r\n\r\n"
            )
            client.write(b"".join(out))
            try:
                reusable = await relay_body(up_reader, client, response, method)
            except (ConnectionError, asyncio.IncompleteReadError):
                up_writer.close()
                return False
            if reusable and response.keep_alive(response.first[0]):
                self.pool.put(address, up_reader, up_writer)
            else:
                up_writer.close()
            return framed
        finally:
            self.router.end(upstream)
