"""Answers the front door writes itself: errors, refusals, /_deploy/* JSON, the maintenance page."""

from __future__ import annotations

import json
from collections.abc import Mapping

REASONS = {
    100: b"Continue",
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    408: b"Request Timeout",
    413: b"Content Too Large",
    421: b"Misdirected Request",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}

MAINTENANCE_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>We will be back shortly. Please try again in a minute.</p>
</body></html>
"""


def reply(
    status: int,
    body: bytes,
    content_type: bytes,
    keep_alive: bool,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Status")),
        b"content-type: %s\r\n" % content_type,
        b"content-length: %d\r\n" % len(body),
        *(b"%s: %s\r\n" % pair for pair in extra),
        b"connection: %s\r\n\r\n" % (b"keep-alive" if keep_alive else b"close"),
        body,
    ]
    return b"".join(lines)


def json_reply(
    status: int,
    payload: Mapping[str, object],
    keep_alive: bool,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bytes:
    return reply(status, json.dumps(payload).encode(), b"application/json", keep_alive, extra)


def retry_after(seconds: int) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"retry-after", b"%d" % seconds),)
