"""A stand-in for the front door's listeners, to test the TLS modules on real sockets.

``TlsSite`` runs an asyncio loop in a thread with two listeners, wired the way the front door
will be: plain HTTP answers ACME challenges first, then redirects to HTTPS; HTTPS serves with
``SniContext.context`` and answers ``hello <Host>`` (with HSTS when asked), keeping connections
alive. The client helpers open a real TCP connection to 127.0.0.1 and handshake with the SNI
name given, since the test's host names resolve nowhere but in pebble's DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import uvloop
from cryptography import x509

from shiplane.frontdoor.acme_client import ChallengeResponder
from shiplane.frontdoor.redirect import https_location, redirect_head
from shiplane.frontdoor.tls import SniContext
from tests.support.app_repo import free_port

T = TypeVar("T")


class TlsSite:
    def __init__(
        self,
        sni: SniContext,
        responder: ChallengeResponder,
        hsts: bytes | None = None,
        loop: str = "uvloop",
    ) -> None:
        self.sni = sni
        self.responder = responder
        self.hsts = hsts
        self.http_port = free_port()
        self.https_port = free_port()
        # uvloop by default: the server runs its front doors on it, and its TLS transport is
        # its own code, not asyncio's.
        self.loop = uvloop.new_event_loop() if loop == "uvloop" else asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tls-site")
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> TlsSite:
        self._thread.start()
        self.call(self._listen())
        return self

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coroutine`` on the site's loop (where a Renewer must live) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(self._close(), timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
        self.loop.close()

    async def _listen(self) -> None:
        self._servers = [
            await asyncio.start_server(self._http, "127.0.0.1", self.http_port),
            await asyncio.start_server(
                self._https, "127.0.0.1", self.https_port, ssl=self.sni.context
            ),
        ]

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for server in self._servers:
            await server.wait_closed()

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The order the front door will follow: challenge, then redirect, then (not here) route.
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            _, target, host, _ = parse(await reader.readuntil(b"\r\n\r\n"))
            body = self.responder.answer(target)
            if body is not None:
                writer.write(response(200, body, [b"Content-Type: text/plain"]))
            elif self.responder.owns(target):
                writer.write(response(404, b"no such challenge\n"))
            else:
                location = https_location(host, target, self.https_port)
                if location is None:
                    writer.write(response(400, b"bad host\n"))
                else:
                    writer.write(redirect_head(location, close=True))
            await writer.drain()
        writer.close()

    async def _https(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        extra = [b"Strict-Transport-Security: " + self.hsts] if self.hsts else []
        try:
            while True:
                _, _, host, close = parse(await reader.readuntil(b"\r\n\r\n"))
                writer.write(response(200, b"hello " + host, extra, close=close))
                await writer.drain()
                if close:
                    break
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def parse(head: bytes) -> tuple[bytes, bytes, bytes, bool]:
    """(method, target, Host, whether the client asked to close) of a request head."""
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers.get(b"host", b""), headers.get(b"connection") == b"close"


def response(
    status: int, body: bytes, extra: list[bytes] | None = None, close: bool = True
) -> bytes:
    lines = [b"HTTP/1.1 %d X" % status, b"Content-Length: %d" % len(body), *(extra or [])]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    serial: int | None  # the serial of the certificate the server presented (HTTPS)


def client_context(root_pem: bytes | None) -> ssl.SSLContext:
    """Verifies against ``root_pem`` (pebble's root) and the SNI name; None: verifies nothing."""
    if root_pem is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cadata=root_pem.decode("ascii"))


def read_answer(sock: socket.socket | ssl.SSLSocket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed mid-answer after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        body += chunk
    return int(lines[0].split(" ")[1]), headers, body


def request(host: str, path: str = "/", close: bool = True) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path.encode(), host.encode(), connection)


def serial_of(sock: ssl.SSLSocket) -> int:
    der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def https_get(port: int, name: str | None, root_pem: bytes | None, path: str = "/") -> Answer:
    """One request on a new connection whose handshake sends SNI ``name`` (None: no SNI)."""
    context = client_context(root_pem)
    if name is None:
        context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=name) as sock,
    ):
        sock.sendall(request(name or "127.0.0.1", path))
        status, headers, body = read_answer(sock)
        return Answer(status, headers, body, serial_of(sock))


def http_get(port: int, host: str, path: str = "/") -> Answer:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request(host, path))
        status, headers, body = read_answer(sock)
        return Answer(status, headers, body, None)
