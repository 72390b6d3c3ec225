"""Static files through a real deploy: the notes app with ``[app] static``, the real server and
its front door; a client polls a file while a deploy switches and a rollback switches back."""

from __future__ import annotations

import gzip
import threading
from collections import Counter

import httpx

from tests.support.app_repo import AppRepo
from tests.support.faults import without_checks
from tests.support.rawhttp import exchange_raw, status_of
from tests.support.wait import serves, wait_for

OLD = "body { color: #111 }\n" * 20
NEW = "body { color: #222 }\n" * 20


def with_static(app: AppRepo, css: str) -> None:
    config = app.path / "shiplane.toml"
    text = config.read_text()
    if "static =" not in text:
        config.write_text(
            text.replace(
                'health = "/healthz"', 'health = "/healthz"\nstatic = { "/static" = "public" }'
            )
        )
    public = app.path / "public"
    public.mkdir(exist_ok=True)
    (public / "app.css").write_text(css)
    (public / "app.css.gz").write_bytes(gzip.compress(css.encode()))
    app.commit(f"static {css[:20]}")


def test_files_served_by_the_door_switch_with_the_release_and_roll_back(app_repo: AppRepo) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    app_repo.git("checkout", "-q", "dev")
    with_static(app_repo, OLD)
    assert app_repo.shiplane("deploy", "dev").code == 0
    url = app_repo.url("dev", "/static/app.css")

    first = httpx.get(url)
    assert first.status_code == 200 and first.text == OLD
    assert first.headers["cache-control"] == "public, max-age=3600"
    assert first.headers["content-type"] == "text/css; charset=utf-8"
    etag = first.headers["etag"]
    assert httpx.get(url, headers={"if-none-match": etag}).status_code == 304
    zipped = httpx.get(url, headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == OLD  # httpx unzips
    assert zipped.headers["vary"] == "Accept-Encoding"
    for target in (b"/static/../shiplane.toml", b"/static/%2e%2e/shiplane.toml", b"/static/a%00"):
        raw = exchange_raw(
            app_repo.ports["dev"],
            b"GET %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" % target,
        )
        assert status_of(raw) in (400, 404) and b"[app]" not in raw, raw[:200]
    # A name no file has is the app's: the notes app's own 404.
    assert httpx.get(app_repo.url("dev", "/static/missing.css")).status_code == 404

    with_static(app_repo, NEW)
    seen: Counter[str] = Counter()
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                answer = client.get(url)
                seen[f"{answer.status_code} {answer.text[:20]}"] += 1

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        deploy = app_repo.shiplane("deploy", "dev")
        assert deploy.code == 0, deploy.stdout
        after_deploy = httpx.get(url)
        rollback = app_repo.shiplane("rollback", "dev")
        assert rollback.code == 0, rollback.stdout
    finally:
        stop.set()
        poller.join(30)

    assert after_deploy.text == NEW and after_deploy.headers["etag"] != etag
    rolled_back = httpx.get(url)
    assert rolled_back.text == OLD and rolled_back.headers["etag"] == etag
    # Only old or new content while deploy and rollback switched: never a 404 or a mix.
    assert set(seen) == {f"200 {OLD[:20]}", f"200 {NEW[:20]}"}, seen
    assert sum(seen.values()) > 20

    # A server restart restores what serves, its files with it (they travel in the stored spec).
    app_repo.stop_server()
    assert app_repo.shiplane("status", "dev").code == 0  # starts a server, which restores
    assert wait_for(lambda: serves(url))
    restored = httpx.get(url)
    assert restored.text == OLD and restored.headers["etag"] == etag


def test_a_mount_outside_the_release_is_refused_naming_the_key(app_repo: AppRepo) -> None:
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            'health = "/healthz"', 'health = "/healthz"\nstatic = { "/static" = "../elsewhere" }'
        )
    )
    result = app_repo.shiplane("deploy", "dev")
    assert result.code == 64, result.stdout
    error = result.data["error"]
    assert "app.static" in str(error) and "../elsewhere" in str(error)
    assert not (app_repo.root / "dev" / "releases").exists()  # nothing was changed
