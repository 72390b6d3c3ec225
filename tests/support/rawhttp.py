"""Blocking HTTP/1.1 clients for hostile-client tests: one on h11 (an independent parser) that
can do ``Expect: 100-continue`` and keep-alive, and raw byte exchanges."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h11


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    informational: list[int] = field(default_factory=list)


class Client:
    """One kept-alive connection, request after request."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h11.Connection(h11.CLIENT)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.sock.sendall(data)

    def _next(self) -> h11.Event:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(65536))
                continue
            assert isinstance(event, h11.Event)
            return event

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
        expect: bool = False,
        host: str = "door.test",
    ) -> Answer:
        if self.conn.our_state is h11.DONE:
            self.conn.start_next_cycle()
        sent = [("host", host), *(headers or [])]
        if body is not None:
            sent.append(("content-length", str(len(body))))
        if expect:
            sent.append(("expect", "100-continue"))
        self._send(h11.Request(method=method, target=target, headers=sent))
        informational: list[int] = []
        if body is not None and expect:
            event = self._next()  # the client sends nothing before the 100
            assert isinstance(event, h11.InformationalResponse), event
            informational.append(event.status_code)
        if body is not None:
            self._send(h11.Data(data=body))
        self._send(h11.EndOfMessage())
        event = self._next()
        while isinstance(event, h11.InformationalResponse):
            informational.append(event.status_code)
            event = self._next()
        assert isinstance(event, h11.Response), event
        chunks = []
        while not isinstance(item := self._next(), h11.EndOfMessage):
            assert isinstance(item, h11.Data)
            chunks.append(bytes(item.data))
        headers_out = {k.decode().lower(): v.decode() for k, v in event.headers}
        return Answer(event.status_code, headers_out, b"".join(chunks), informational)


def exchange_raw(port: int, data: bytes, timeout: float = 5) -> bytes:
    """Send ``data``, read until the door closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0
