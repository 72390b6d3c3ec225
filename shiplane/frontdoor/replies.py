"""Answers the front door writes itself: errors, refusals, /_deploy/* JSON, the maintenance page."""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from shiplane.frontdoor.settings import Limits
from shiplane.frontdoor.wire import Head

Headers = tuple[tuple[bytes, bytes], ...]


class Listener(Protocol):
    """What a refusal needs of ``listener.Listener`` (which imports this module)."""

    @property
    def ssl_context(self) -> ssl.SSLContext | None: ...

    @property
    def limits(self) -> Limits: ...

    @property
    def default(self) -> object: ...

    @property
    def domains(self) -> Mapping[str, object]: ...

    def route(self, head: Head) -> object: ...


REASONS = {
    100: b"Continue",
    200: b"OK",
    304: b"Not Modified",
    400: b"Bad Request",
    401: b"Unauthorized",
    404: b"Not Found",
    405: b"Method Not Allowed",
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
# The header whose value (``shiplane.state.maintenance``) passes the maintenance page; the door
# removes it before relaying.
MAINTENANCE_BYPASS = b"x-shiplane-maintenance-bypass"


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


@runtime_checkable
class AnswersOwn(Protocol):
    """What a site (``BuiltinFrontDoor``) offers for answers written before it was asked."""

    def own_headers(self, scheme: bytes) -> Headers: ...

    def log_own(self, peer: str, head: Head | None, status: int, sent: int) -> None: ...


def refused(
    listener: Listener,
    peer: str,
    status: int,
    reason: str,
    head: Head | None = None,
    keep_alive: bool = False,
    extra: Headers = (),
) -> bytes:
    """A listener's refusal (400, 408, 421, 431, 503 over the connection cap), written before
    any site took the request, yet logged and marked as the environment's own: it goes to the
    access log of the environment it was meant for (by Host, else the listener's only site)
    and, on HTTPS, carries HSTS when that environment sets it. A request no environment can
    be named for (a 421 on a shared port) carries HSTS only when every environment on the
    listener sets it (the shortest max-age), and is left to the listener's counters."""
    scheme = b"https" if listener.ssl_context is not None else b"http"
    site = _meant_for(listener, head)
    if site is not None:
        extra = (*extra, *site.own_headers(scheme))
    elif scheme == b"https":
        extra = (*extra, *_shared_hsts(listener))
    answer = json_reply(status, {"error": reason}, keep_alive, extra)
    if site is not None:
        site.log_own(peer, head, status, len(answer))
    return answer


def over_capacity(listener: Listener, peer: str) -> bytes:
    """The 503 of a connection over a cap, before any request was read."""
    extra = retry_after(listener.limits.retry_after)
    return refused(listener, peer, 503, "too many connections", extra=extra)


def _meant_for(listener: Listener, head: Head | None) -> AnswersOwn | None:
    site = listener.route(head) if head is not None and head.method else None
    if site is None:
        sites = {id(s): s for s in (listener.default, *listener.domains.values()) if s}
        site = next(iter(sites.values())) if len(sites) == 1 else None
    return site if isinstance(site, AnswersOwn) else None


def _shared_hsts(listener: Listener) -> Headers:
    sites = [s for s in (listener.default, *listener.domains.values()) if s is not None]
    values = [s.own_headers(b"https") if isinstance(s, AnswersOwn) else () for s in sites]
    if not values or not all(values):
        return ()
    return min(values, key=lambda h: int(h[0][1].split(b"=", 1)[1].split(b";")[0]))
