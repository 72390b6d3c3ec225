"""The fast path's response head (``plain_head``): for every head it takes, the client gets what
``response_head`` writes from the head llhttp parsed with its callbacks; every head it cannot
take whole (hop-by-hop headers beyond a plain Connection, no length) goes to ``response_head``."""

from __future__ import annotations

import httptools
import pytest

from shiplane.frontdoor.exchange import response_head
from shiplane.frontdoor.plain_head import parse_head, plain_head
from shiplane.frontdoor.wire import Head, MessageReader

PLAIN = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n",
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: keep-alive\r\n",
    b"HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\nX-Connection: close\r\n",
    b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n",
    b"HTTP/1.1 500 \r\nContent-Length:  7 \r\nX-TE: x\r\nTEx: y\r\nConnection-Id: 9\r\n",
    b"HTTP/1.1 301 Moved\r\nLocation: /b\r\nContent-Length: 0\r\nConnection: keep-alive \r\n",
]
NOT_PLAIN = [
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",  # re-chunked by the door
    b"HTTP/1.1 200 OK\r\nServer: x\r\n",  # delimited by the close
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: X-Secret\r\nX-Secret: 1\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTrailer: X-Sum\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTE: trailers\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nUpgrade: h2c\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nProxy-Connection: keep-alive\r\n",
    b"RTSP/1.0 200 OK\r\nContent-Length: 3\r\n",  # llhttp takes it; the door says HTTP/1.1
    b"ICE/1.0 200 OK\r\nContent-Length: 3\r\n",
]


def request(raw: bytes) -> Head:
    reader = MessageReader(None, response=False, max_head=1 << 16)  # type: ignore[arg-type]
    reader.feed(raw)
    assert reader.head is not None
    return reader.head


KEPT = request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
CLOSING = request(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def accepted_by_llhttp(head: bytes) -> None:
    """The heads here are ones llhttp takes: the only kind ``plain_head`` is given."""
    done: list[bool] = []

    class Sink:
        def on_headers_complete(self) -> None:
            done.append(True)

    httptools.HttpResponseParser(Sink()).feed_data(head + b"\r\n")
    assert done


def names_lowered(data: bytes) -> list[bytes]:
    """Head lines with header names lowercased (``response_head`` writes them so; the plain
    head keeps the upstream's spelling, as nginx does)."""
    status, *rest = data.split(b"\r\n")
    out = [status]
    for line in rest:
        name, sep, value = line.partition(b":")
        out.append(name.lower() + sep + (b" " + value.strip(b" \t") if sep else b""))
    return out


@pytest.mark.parametrize("head", PLAIN)
@pytest.mark.parametrize("client", [KEPT, CLOSING], ids=["keep-alive", "close"])
def test_a_plain_head_is_what_response_head_writes(head: bytes, client: Head) -> None:
    accepted_by_llhttp(head)
    plain = plain_head(head, client.keep_alive)
    assert plain is not None
    full, mode = response_head(parse_head(head), client)
    assert mode == "length"
    assert names_lowered(plain) == names_lowered(full)
    assert plain.startswith(b"HTTP/1.1 ")
    ending = b"keep-alive" if client.keep_alive else b"close"
    assert plain.endswith(b"\r\nconnection: " + ending + b"\r\n\r\n")
    names = [line.split(b":")[0].lower() for line in plain.split(b"\r\n")[1:] if line]
    assert names.count(b"connection") == 1 and b"keep-alive" not in names


@pytest.mark.parametrize("head", NOT_PLAIN)
def test_a_head_with_more_to_rewrite_goes_to_response_head(head: bytes) -> None:
    accepted_by_llhttp(head)
    assert plain_head(head, True) is None
    full, _ = response_head(parse_head(head), KEPT)
    assert b"x-secret" not in full.lower() and b"upgrade:" not in full.lower()
    assert full.startswith(b"HTTP/1.1 200 ")
