"""One HTTP/1.1 POST over a Unix socket and its NDJSON answer, on a raw socket: what
``shiplane.cli.fast_client`` needs of HTTP, without ``http.client`` (which imports ``email``
and ``ssl``: about a fifth of the short road's imports, bench/RESULTS.md).

The server (uvicorn behind the control socket) answers an operation with a streamed body
(chunked) of one JSON event per line; a plain body with a length is read the same way.
Anything unexpected is ``BadAnswer``: the caller then takes the full road.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

CONNECT_TIMEOUT = 3.0
# A header line longer than this is no answer of the control API.
MAX_LINE = 64 * 1024


class BadAnswer(Exception):
    """Not the answer of a shiplane server's control API."""


class NotTaken(BadAnswer):
    """The server answered with a status other than 200: it did not run the request (the
    control API refuses a token, a size or a malformed body before an operation starts)."""


def connect(path: Path) -> socket.socket:
    """A connection to the Unix socket at ``path``; OSError when no server listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def post_events(
    sock: socket.socket, target: str, body: bytes, headers: dict[str, str], silence: float
) -> Iterator[dict[str, Any]]:
    """POST ``body`` to ``target`` over ``sock`` (from ``connect``); the JSON events of a
    200 answer as they arrive (at most ``silence`` seconds apart)."""
    for value in (target, *headers, *headers.values()):
        if not value.isprintable() or not value.isascii():
            raise NotTaken("a header that cannot travel")  # never CR/LF into the head; not sent
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"POST {target} HTTP/1.1\r\nhost: shiplane\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{head}\r\n"
    ).encode("ascii")
    sock.settimeout(silence)
    sock.sendall(request + body)
    with sock.makefile("rb") as reader:
        yield from _events(reader)


def _events(reader: BinaryIO) -> Iterator[dict[str, Any]]:
    status = _line(reader).split(None, 2)
    if len(status) < 2 or not status[0].startswith(b"HTTP/1."):
        raise BadAnswer(f"status line {status[:2]!r}")
    if status[1] != b"200":
        raise NotTaken(f"status {status[1]!r}")
    chunked, length = False, None
    while line := _line(reader).strip():
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"transfer-encoding":
            chunked = value == b"chunked"
        elif name == b"content-length":
            length = int(value)
    pending = b""
    for data in _chunks(reader) if chunked else [reader.read(length or -1)]:
        *lines, pending = (pending + data).split(b"\n")
        for text in lines:
            if text.strip():
                yield json.loads(text)
    if pending.strip():
        yield json.loads(pending)


def _chunks(reader: BinaryIO) -> Iterator[bytes]:
    while True:
        size = int(_line(reader).split(b";")[0].strip(), 16)
        if size == 0:
            return
        data = reader.read(size)
        if len(data) != size or _line(reader).strip():
            raise BadAnswer("a chunk cut short")
        yield data


def _line(reader: BinaryIO) -> bytes:
    line = reader.readline(MAX_LINE)
    if not line.endswith(b"\n"):
        raise BadAnswer("the answer ended, or a line too long")
    return line
