"""The heads the relay writes: what it drops (hop-by-hop, a client's own X-Forwarded-*), what it
keeps, how it frames. Pure functions over heads parsed by llhttp, as the relay gets them."""

from __future__ import annotations

from shiplane.frontdoor.exchange import request_bytes, response_head
from shiplane.frontdoor.wire import END, HEAD, Head, MessageReader

FORWARDED = b"x-forwarded-for: 10.0.0.9\r\nx-forwarded-proto: http\r\n"


def parsed(raw: bytes, response: bool = False) -> Head:
    reader = MessageReader(None, response=response, max_head=1 << 16)  # type: ignore[arg-type]
    reader.feed(raw)
    kind, head = reader.events[0]
    assert kind == HEAD and isinstance(head, Head)
    return head


def lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


def test_hop_by_hop_headers_named_in_every_connection_header_are_dropped() -> None:
    head = parsed(
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: x-secret\r\nConnection: keep-alive, X-Other\r\n"
        b"X-Secret: 1\r\nX-Other: 2\r\nX-Kept: 3\r\nKeep-Alive: timeout=5\r\n\r\n"
    )
    sent = lines(request_bytes(head, FORWARDED, keep_forwarded=False))
    assert sent[0] == b"GET /a HTTP/1.1"
    assert b"x-kept: 3" in sent and b"host: x" in sent
    assert not [line for line in sent if line.startswith((b"x-secret", b"x-other", b"keep-alive"))]
    assert sent[-3:] == [b"connection: keep-alive", b"", b""]


def test_a_clients_own_forwarded_headers_are_replaced_unless_it_is_trusted() -> None:
    raw = (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Port: 1\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    untrusted = lines(request_bytes(parsed(raw), FORWARDED, keep_forwarded=False))
    assert b"x-forwarded-for: 10.0.0.9" in untrusted
    assert not [line for line in untrusted if b"6.6.6.6" in line or b"x-forwarded-port" in line]
    assert b"content-length: 0" in untrusted
    trusted = lines(request_bytes(parsed(raw), FORWARDED, keep_forwarded=True))
    assert b"x-forwarded-port: 1" in trusted  # kept; the door's own set replaces the rest
    assert [line for line in trusted if line.startswith(b"x-forwarded-for")] == [
        b"x-forwarded-for: 10.0.0.9"
    ]


def test_response_heads_frame_for_the_client() -> None:
    get = parsed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head_request = parsed(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    old_client = parsed(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    length = parsed(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
        b"Strict-Transport-Security: max-age=1\r\n\r\n",
        response=True,
    )
    data, mode = response_head(length, get, ((b"strict-transport-security", b"max-age=9"),))
    assert mode == "length"
    sent = lines(data)
    assert b"content-length: 3" in sent and b"strict-transport-security: max-age=9" in sent
    assert b"strict-transport-security: max-age=1" not in sent and b"x-hop: 1" not in sent
    assert sent[-3:] == [b"connection: keep-alive", b"", b""]
    data, mode = response_head(length, head_request)
    assert mode == "none" and b"content-length: 3" in lines(data)  # it describes the entity
    chunked = parsed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", response=True)
    assert response_head(chunked, get)[1] == "chunked"
    data, mode = response_head(chunked, old_client)
    assert mode == "close" and lines(data)[-3:] == [b"connection: close", b"", b""]


def test_a_body_less_request_ends_right_after_its_head() -> None:
    reader = MessageReader(None, response=False, max_head=1 << 16)  # type: ignore[arg-type]
    reader.feed(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHo")
    assert [kind for kind, _ in reader.events] == [HEAD, END]  # what the fast path relies on
    assert reader.in_message  # the second head has begun: its timer runs
