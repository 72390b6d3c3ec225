"""Static files from the built-in front door: a real door on a real socket, a real upstream
(the stdlib's keep-alive server), files in tmp_path; clients are h11 and raw bytes."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.settings import Limits
from shiplane.frontdoor.static import for_release
from tests.support.doors import DoorThread, KeepAliveApp, door_thread
from tests.support.rawhttp import Client, exchange_raw, status_of

CSS = b"body { color: teal }\n" * 50


def release(tmp_path: Path, name: str, css: bytes = CSS) -> Path:
    """A release directory with a static dir, and a secret beside it that must stay private."""
    root = tmp_path / name
    files = root / "staticfiles"
    (files / "css").mkdir(parents=True)
    (files / "css" / "app.css").write_bytes(css)
    (files / "css" / "app.css.gz").write_bytes(gzip.compress(css))
    (files / "app.3f2a1b9c.js").write_text("console.log(1)\n")
    (files / ".env").write_text("SECRET=hidden-file\n")
    (root / "secret.txt").write_text("SECRET=release-file\n")
    (tmp_path / "outside.txt").write_text("SECRET=outside\n")
    (files / "escape.txt").symlink_to(tmp_path / "outside.txt")
    (files / "inside.txt").symlink_to(files / "css" / "app.css")
    return root


def upstream_with_files(app: KeepAliveApp, root: Path, max_age: int = 3600) -> Upstream:
    static = for_release(str(root), {"/static": "staticfiles"}, max_age, Limits())
    assert static is not None
    up = app.upstream
    return Upstream(up.instance_id, up.host, up.port, up.info, static)


@contextmanager
def serving(tmp_path: Path) -> Iterator[tuple[DoorThread, BuiltinFrontDoor, KeepAliveApp, Path]]:
    root = release(tmp_path, "r1")
    with KeepAliveApp("blue").running() as app, door_thread() as (runner, door):
        runner.do(lambda: door.switch(upstream_with_files(app, root)))
        yield runner, door, app, root


def test_a_file_is_served_with_etag_validators_and_caching(tmp_path: Path) -> None:
    with serving(tmp_path) as (_, door, app, _root), Client(door.port) as client:
        first = client.request("GET", "/static/css/app.css")
        assert first.status == 200 and first.body == CSS
        assert first.headers["content-type"] == "text/css; charset=utf-8"
        assert first.headers["cache-control"] == "public, max-age=3600"
        assert first.headers["content-length"] == str(len(CSS))
        assert first.headers["vary"] == "Accept-Encoding"  # a .gz sibling exists
        etag = first.headers["etag"]
        assert etag.startswith('"') and "last-modified" in first.headers

        again = client.request("GET", "/static/css/app.css", headers=[("if-none-match", etag)])
        assert (again.status, again.body, again.headers["etag"]) == (304, b"", etag)
        since = [("if-modified-since", first.headers["last-modified"])]
        assert client.request("GET", "/static/css/app.css", headers=since).status == 304
        other = client.request("GET", "/static/css/app.css", headers=[("if-none-match", '"x"')])
        assert other.status == 200 and other.body == CSS

        head = client.request("HEAD", "/static/css/app.css")
        assert head.status == 200 and head.body == b""
        assert head.headers["content-length"] == str(len(CSS))
        # The same connection goes on to the app: kept alive, fast path again.
        relayed = client.request("GET", "/id/after")
        assert relayed.status == 200 and b'"name": "blue"' in relayed.body
    assert app.requests == 1  # only /id/after reached the app


def test_gzip_sibling_for_clients_that_accept_it(tmp_path: Path) -> None:
    with serving(tmp_path) as (_, door, _app, _root), Client(door.port) as client:
        plain = client.request("GET", "/static/css/app.css")
        zipped = client.request(
            "GET", "/static/css/app.css", headers=[("accept-encoding", "br, gzip")]
        )
        assert zipped.status == 200 and zipped.headers["content-encoding"] == "gzip"
        assert gzip.decompress(zipped.body) == CSS and len(zipped.body) < len(CSS)
        assert zipped.headers["etag"] != plain.headers["etag"]  # two representations
        refused = client.request(
            "GET", "/static/css/app.css", headers=[("accept-encoding", "gzip;q=0")]
        )
        assert "content-encoding" not in refused.headers and refused.body == CSS
        # A file with no .gz: served as is, with no Vary.
        js = client.request("GET", "/static/app.3f2a1b9c.js", headers=[("accept-encoding", "gzip")])
        assert "content-encoding" not in js.headers and "vary" not in js.headers
        assert js.headers["cache-control"] == "public, max-age=31536000, immutable"  # fingerprinted
        assert js.headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_paths_that_leave_the_mount_are_refused_and_never_reach_the_app(tmp_path: Path) -> None:
    hostile = {
        b"/static/../secret.txt": 404,
        b"/static/%2e%2e/secret.txt": 404,
        b"/static/%2E%2E%2Fsecret.txt": 404,
        b"/static/css/..%2f..%2fsecret.txt": 404,
        b"/static/escape.txt": 404,  # a symlink pointing out of the mount
        b"/static/.env": 404,  # hidden files are not published
        b"/static/%2eenv": 404,
        b"/static/app%00.css": 400,
        b"/static/%ff%fe.css": 400,
        b"/static/..%5csecret.txt": 404,
    }
    with serving(tmp_path) as (_, door, app, _root):
        for target, status in hostile.items():
            raw = exchange_raw(
                door.port, b"GET %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" % target
            )
            assert status_of(raw) == status, (target, raw[:200])
            assert b"SECRET" not in raw
        # A symlink that stays inside the mount is served.
        with Client(door.port) as client:
            assert client.request("GET", "/static/inside.txt").body == CSS
    assert app.requests == 0


def test_a_path_naming_no_file_falls_through_to_the_app(tmp_path: Path) -> None:
    with serving(tmp_path) as (_, door, app, _root), Client(door.port) as client:
        for target in ("/static/missing.css", "/static/css/", "/static/css", "/staticx/app.css"):
            answer = client.request("GET", target)
            assert answer.status == 200 and b'"name": "blue"' in answer.body, target
        assert app.requests == 4
        posted = client.request("POST", "/static/css/app.css", body=b"x")
        assert posted.status == 405 and posted.headers["allow"] == "GET, HEAD"


def test_a_big_file_is_streamed_whole(tmp_path: Path) -> None:
    with serving(tmp_path) as (_, door, _app, root):
        big = root / "staticfiles" / "big.bin"
        with big.open("wb") as handle:
            for _ in range(24):
                handle.write(os.urandom(1 << 20))
        expected = hashlib.sha256(big.read_bytes()).hexdigest()
        raw = exchange_raw(
            door.port,
            b"GET /static/big.bin HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            timeout=30,
        )
        head, _, body = raw.partition(b"\r\n\r\n")
        assert status_of(raw) == 200 and b"content-type: application/octet-stream" in head
        assert len(body) == 24 << 20 and hashlib.sha256(body).hexdigest() == expected


def test_the_switch_moves_the_files_with_the_instance(tmp_path: Path) -> None:
    old = release(tmp_path / "a", "r1", b"old\n")
    new = release(tmp_path / "b", "r2", b"new\n")
    with (
        KeepAliveApp("blue").running() as blue,
        KeepAliveApp("green").running() as green,
        door_thread() as (runner, door),
        Client(door.port) as client,
    ):
        runner.do(lambda: door.switch(upstream_with_files(blue, old)))
        assert client.request("GET", "/static/css/app.css").body == b"old\n"
        runner.do(lambda: door.switch(upstream_with_files(green, new)))
        assert client.request("GET", "/static/css/app.css").body == b"new\n"
        # An upstream without mounts: the app answers the prefix again (WhiteNoise's case).
        runner.do(lambda: door.switch(green.upstream))
        answer = client.request("GET", "/static/css/app.css")
        assert b'"name": "green"' in answer.body


def test_a_client_that_stops_reading_is_let_go(tmp_path: Path) -> None:
    root = release(tmp_path, "r1")
    with (root / "staticfiles" / "big.bin").open("wb") as handle:
        handle.write(b"\0" * (32 << 20))
    limits = Limits(idle_timeout=1.0)
    with KeepAliveApp("blue").running() as app, door_thread(limits) as (runner, door):
        static = for_release(str(root), {"/static": "staticfiles"}, 60, limits)
        up = app.upstream
        runner.do(lambda: door.switch(Upstream(up.instance_id, up.host, up.port, {}, static)))
        with socket.create_connection(("127.0.0.1", door.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nhost: x\r\n\r\n")
            assert sock.recv(12) == b"HTTP/1.1 200"  # the answer started, then no more reads
            started = time.monotonic()
            while door.stats().connections and time.monotonic() < started + 15:
                time.sleep(0.2)  # reading nothing
            assert door.stats().connections == 0
            assert time.monotonic() - started < 10


def test_files_are_served_through_a_hold_but_not_through_maintenance(tmp_path: Path) -> None:
    with serving(tmp_path) as (runner, door, app, _root):
        runner.do(lambda: door.hold(5))
        try:
            with Client(door.port) as client:
                started = time.monotonic()
                answer = client.request("GET", "/static/css/app.css")
                assert answer.status == 200 and answer.body == CSS
                assert time.monotonic() - started < 2  # not parked with the relayed requests
        finally:
            runner.do(door.release)
        runner.do(lambda: door.maintenance(True))
        with Client(door.port) as client:
            page = client.request("GET", "/static/css/app.css")
            assert page.status == 503 and b"maintenance" in page.body
    assert app.requests == 0


def test_pipelined_requests_get_their_answers_in_order(tmp_path: Path) -> None:
    with serving(tmp_path) as (_, door, _app, _root):
        requests = (
            b"GET /static/css/app.css HTTP/1.1\r\nhost: x\r\n\r\n"
            b"HEAD /static/app.3f2a1b9c.js HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /id/relayed HTTP/1.1\r\nhost: x\r\n\r\n"
            b"GET /static/css/app.css HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        raw = exchange_raw(door.port, requests)
        assert raw.count(b"HTTP/1.1 200 OK") == 4
        first, second, third, fourth = raw.split(b"HTTP/1.1 200 OK")[1:]
        assert first.endswith(CSS) and fourth.endswith(CSS)
        assert b"javascript" in second and second.endswith(b"\r\n\r\n")  # HEAD: no body
        assert b'"path": "/id/relayed"' in third
