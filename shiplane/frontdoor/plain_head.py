"""The usual response head, passed to the client in the upstream's own bytes.

The fast path (fastpath.py) lets llhttp parse a response without its per-header callbacks: one
Python call per header, a ``Head`` and the rebuilt head cost more than everything else the relay
does for a small response. llhttp still parses and checks every byte. Past the empty lines it
skips before a status line, it refuses any head that is not strictly framed (a bare LF or CR, a
folded line, whitespace before a colon, control bytes, a second Content-Length), so in a head it
accepted each header is one ``\\r\\nName:value`` line, and one regex over the head's bytes finds
every hop-by-hop header in it.

A head whose only hop-by-hop headers are Content-Length and a plain ``Connection: keep-alive`` or
``close`` (with ``Keep-Alive``) leaves the door as ``exchange.response_head`` would write it: the
same lines in the same order, minus Connection and Keep-Alive, plus the door's own Connection
line. Every other head (chunked or close-delimited bodies, Connection naming other headers,
Upgrade, Trailer, TE, 1xx, 204, 304, a status line other than HTTP/1.x, such as the RTSP/ and
ICE/ ones llhttp also takes) goes through ``response_head``, on a ``Head`` that llhttp parses
again from the same bytes (``parse_head``).
"""

from __future__ import annotations

import re

from shiplane.frontdoor.wire import HOP_BY_HOP, Head, MessageReader

HOP_LINE = re.compile(
    rb"\r\n(" + b"|".join(re.escape(name) for name in sorted(HOP_BY_HOP)) + rb"):[ \t]*([^\r]*)",
    re.IGNORECASE,
)
DROPPED_LINE = re.compile(rb"\r\n(?:connection|keep-alive):[^\r]*", re.IGNORECASE)
PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})
KEEP = b"connection: keep-alive\r\n\r\n"
CLOSE = b"connection: close\r\n\r\n"


def plain_head(head: bytes, keep_alive: bool) -> bytes | None:
    """``head`` (the status line and header lines up to the blank line, which llhttp accepted
    as a final response with a body) as the client gets it, or None when the head needs
    ``response_head``. ``keep_alive``: the client connection stays open after the response."""
    length = False
    drop = False
    for name, value in HOP_LINE.findall(head):
        name = name.lower()
        if name == b"content-length":
            length = True
        elif name == b"keep-alive" or (
            name == b"connection" and value.rstrip().lower() in PLAIN_CONNECTION
        ):
            drop = True
        else:
            return None
    if not length:
        return None  # chunked or delimited by the close: the door frames those itself
    if drop:
        head = DROPPED_LINE.sub(b"", head)
    if not head.startswith(b"HTTP/1.1 "):
        if not head.startswith(b"HTTP/1.0 "):
            return None  # rebuilt from the status code by ``response_head``
        head = b"HTTP/1.1" + head[8:]  # the door speaks 1.1 to the client
    return head + (KEEP if keep_alive else CLOSE)


def parse_head(head: bytes) -> Head:
    """The ``Head`` of a response head llhttp accepted, parsed again by llhttp with its
    callbacks, for ``response_head``."""
    reader = MessageReader(None, response=True, max_head=len(head) + 2)  # type: ignore[arg-type]
    reader.feed(head + b"\r\n")
    parsed = reader.head
    assert parsed is not None and reader.head_done
    return parsed
