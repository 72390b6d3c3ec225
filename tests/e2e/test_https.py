"""HTTPS wired end to end: apps deployed through the real CLI and server share one HTTPS port by
SNI, with certificates from a real ACME CA (pebble) or the user's own files; renewal under a
client loop, plain HTTP's redirect and challenges, HSTS, X-Forwarded-Proto, and a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import ssl
import stat
import threading
import time
from pathlib import Path

import pytest

from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.settings import DoorSettings, Limits, TlsSettings
from shiplane.layout import ServerLayout
from shiplane.server.core import EnvKey, ServerCore
from shiplane.targets.control_client import ServerClient
from tests.e2e.test_tls import own_certificate
from tests.support.app_repo import AppRepo, free_port, make_repo
from tests.support.pebble import pebble
from tests.support.rawhttp import exchange_raw, status_of
from tests.support.tls_site import Answer, client_context, http_get, https_get
from tests.support.wait import wait_for

NOTES, TASKS = "notes.test", "tasks.test"
# A route that shows what the front door told the app about the request's scheme.
PROTO_ROUTE = """

@app.get("/proto")
def proto():
    return request.headers.get("X-Forwarded-Proto", "")
"""


def _set_dev(repo: AppRepo, lines: str) -> None:
    config = repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", f"auto_merge = true\n{lines}")
    )


def _serves(port: int, name: str, root: bytes, path: str = "/_deploy/version") -> Answer | None:
    try:
        return https_get(port, name, root, path)
    except (OSError, ssl.SSLError):
        return None


def test_two_apps_get_certificates_from_acme_on_one_https_port(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    other = make_repo(tmp_path / "second", name="tasks", home=app_repo.home)
    https, http = free_port(), free_port()
    app_repo.commit("proto route", {"app.py": (app_repo.path / "app.py").read_text() + PROTO_ROUTE})
    try:
        with pebble(tmp_path / "pebble", http) as ca:
            acme = (
                f'acme = true, email = "ops@example.com", directory = "{ca.directory}",'
                f' ca_bundle = "{ca.ca_bundle}", http_port = {http}'
            )
            listen = f'listen = "127.0.0.1:{https}"'
            _set_dev(app_repo, f'{listen}\ndomains = ["{NOTES}"]\ntls = {{ {acme}, hsts = 600 }}')
            _set_dev(
                other, f'{listen}\ndomains = ["{TASKS}"]\ntls = {{ {acme}, redirect_http = false }}'
            )
            deployed = app_repo.shiplane("deploy", "dev")
            assert deployed.code == 0, deployed.stdout
            deployed = other.shiplane("deploy", "dev")
            assert deployed.code == 0, deployed.stdout
            root = ca.root_pem()

            # Each name gets its own certificate from pebble, verified by name and root.
            assert wait_for(lambda: _serves(https, NOTES, root) is not None, timeout=30)
            assert wait_for(lambda: _serves(https, TASKS, root) is not None, timeout=30)
            version = "/_deploy/version"
            notes, tasks = (
                https_get(https, NOTES, root, version),
                https_get(https, TASKS, root, version),
            )
            assert json.loads(notes.body)["sha"] == app_repo.git("rev-parse", "HEAD")
            assert json.loads(tasks.body)["sha"] == other.git("rev-parse", "HEAD")
            assert notes.serial != tasks.serial

            # The app hears that the request came over HTTPS; HSTS where configured.
            proto = https_get(https, NOTES, root, "/proto")
            assert (proto.status, proto.body) == (200, b"https")
            assert proto.headers["strict-transport-security"] == "max-age=600"
            assert "strict-transport-security" not in https_get(https, TASKS, root, "/").headers

            # An unknown name (or none) is shown no certificate at all.
            for name in ("nobody.test", None):
                with pytest.raises(ssl.SSLError):
                    https_get(https, name, None)

            # Plain HTTP: 308 to HTTPS, but challenge paths are answered, never redirected;
            # tasks asked for no redirect and is served over HTTP as it is.
            moved = http_get(http, NOTES, "/api/notes?tag=x")
            assert moved.status == 308
            assert moved.headers["location"] == f"https://{NOTES}:{https}/api/notes?tag=x"
            assert http_get(http, NOTES, "/.well-known/acme-challenge/none").status == 404
            assert http_get(http, TASKS, "/api/notes").status == 200
            assert http_get(http, "nobody.test", "/").status == 421

            # Keys are the server's alone.
            certs = app_repo.home / "certs"
            for host in (NOTES, TASKS):
                assert stat.S_IMODE((certs / host / "key.pem").stat().st_mode) == 0o600
                assert stat.S_IMODE((certs / host).stat().st_mode) == 0o700
            assert stat.S_IMODE(certs.stat().st_mode) == 0o700

            # Status reports each host's certificate expiry.
            status = app_repo.shiplane("server", "status", "--json")
            (host,) = status.data["envs"]["dev"]["front_door"]["tls"]
            assert host["host"] == NOTES and host["not_after"] and host["obtained"] == 1
            assert host["serial"] == f"{notes.serial:x}"

            # A forced renewal while clients loop over HTTPS: not one request fails.
            seen: list[int] = []
            failures: list[BaseException] = []
            stop = threading.Event()

            def clients() -> None:
                while not stop.is_set():
                    try:
                        answer = https_get(https, NOTES, root)
                        assert answer.status == 200, answer
                        seen.append(answer.serial or 0)
                    except (OSError, ssl.SSLError, AssertionError) as exc:
                        failures.append(exc)

            threads = [threading.Thread(target=clients) for _ in range(2)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(0.3)
                server = ServerClient(ServerLayout(app_repo.home))
                renewed = server.request("POST", "/apps/notes/envs/dev/tls/renew")["hosts"][0]
                new = int(renewed["serial"], 16)
                assert wait_for(lambda: new in seen, timeout=10)
                time.sleep(0.3)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(10)
            assert failures == []
            assert new != notes.serial and set(seen) == {notes.serial, new} and len(seen) > 20

            # A server restart reopens the HTTPS listener and serves the stored certificates
            # at once (no new order).
            os.kill(int((app_repo.home / "server.pid").read_text()), signal.SIGKILL)
            assert app_repo.shiplane("server").code == 0
            assert wait_for(lambda: _serves(https, TASKS, root) is not None, timeout=30)
            assert https_get(https, NOTES, root).serial == new
            assert https_get(https, TASKS, root).serial == tasks.serial
    finally:
        other.stop_server()


def test_own_certificate_files_travel_with_the_config(app_repo: AppRepo, tmp_path: Path) -> None:
    https, http = free_port(), free_port()
    chain, key, ca = own_certificate(app_repo.path / "tls", [NOTES])
    _, stray_key, _ = own_certificate(tmp_path / "stray", [NOTES])
    tls = f'cert = "tls/chain.pem", key = "tls/{{}}", http_port = {http}, hsts = true'
    _set_dev(app_repo, f'listen = "127.0.0.1:{https}"\ndomains = ["{NOTES}"]\ntls = {{ {tls} }}')
    config = app_repo.path / "shiplane.toml"

    # A key that does not belong to the certificate is refused before anything is deployed.
    (app_repo.path / "tls" / "stray.pem").write_bytes(stray_key.read_bytes())
    config.write_text(config.read_text().replace("tls/{}", "tls/stray.pem"))
    refused = app_repo.shiplane("deploy", "dev")
    assert refused.code == 64, refused.stdout
    error = refused.data["error"]
    assert error["step"] == "preflight" and "KEY_VALUES_MISMATCH" in error["message"]
    assert "tls/chain.pem" in error["message"]  # the user's path, not the server's copy

    config.write_text(config.read_text().replace("tls/stray.pem", f"tls/{key.name}"))
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout
    answer = https_get(https, NOTES, ca, "/healthz")
    assert answer.status == 200
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert http_get(http, NOTES, "/").status == 308
    # The server keeps its own copy of the key, 0600, never the client's path.
    copy = app_repo.root / "config" / "tls" / "dev.key.pem"
    assert copy.read_bytes() == key.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    status = app_repo.shiplane("server", "status", "--json")
    (host,) = status.data["envs"]["dev"]["front_door"]["tls"]
    assert host["host"] == NOTES and host["source"] == "files" and host["not_after"]
    assert chain.exists()


def test_promote_refuses_tls_that_cannot_work_before_any_step(app_repo: AppRepo) -> None:
    """promote runs deploy's preflight on the target env: a certificate and a key that do not
    belong together, or a file that is not there, stop it before the branch moves."""
    https, http = free_port(), free_port()
    _, key, ca = own_certificate(app_repo.path / "tls", [NOTES])
    _, stray_key, _ = own_certificate(app_repo.path / "stray", [NOTES])
    (app_repo.path / "tls" / "stray.pem").write_bytes(stray_key.read_bytes())
    config = app_repo.path / "shiplane.toml"
    tls = f'cert = "tls/chain.pem", key = "tls/stray.pem", http_port = {http}'
    prod = f'listen = "127.0.0.1:{https}"\ndomains = ["{NOTES}"]\ntls = {{ {tls} }}\n'
    config.write_text(
        config.read_text().replace('promote_from = "dev"', f'{prod}promote_from = "dev"')
    )
    app_repo.git("checkout", "-q", "-B", "feature/tls")
    sha = app_repo.commit("notes 1.1.0", {"VERSION": "1.1.0\n"})
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert app_repo.shiplane("verify", "dev").code == 0

    refused = app_repo.shiplane("promote", "prod")
    assert refused.code == 64, refused.stdout
    error = refused.data["error"]
    assert error["step"] == "preflight" and "KEY_VALUES_MISMATCH" in error["message"]
    assert error["message"].startswith("environments.prod.tls")
    assert refused.data["promotion"]["status"] == "failed"
    # Nothing moved: no step ran, the server's main is where it was, prod serves nothing.
    assert refused.data["steps"] == []
    assert app_repo.remote_branch("main") != sha
    assert not (app_repo.root / "apps" / "notes" / "prod" / "releases").exists() or not list(
        (app_repo.root / "apps" / "notes" / "prod" / "releases").iterdir()
    )
    history = app_repo.shiplane("history", "prod").data["deployments"]
    assert [(d["kind"], d["status"], d["exit_code"]) for d in history] == [
        ("promote", "refused", 64)
    ]

    # A certificate file that is not there is named before the request leaves the client.
    config.write_text(config.read_text().replace("tls/chain.pem", "tls/missing.pem"))
    missing = app_repo.shiplane("promote", "prod")
    assert missing.code == 64 and "environments.prod.tls.cert" in missing.data["error"]["message"]

    # With the right pair the same promotion goes through and prod answers over HTTPS.
    config.write_text(
        config.read_text()
        .replace("tls/missing.pem", "tls/chain.pem")
        .replace("tls/stray.pem", f"tls/{key.name}")
    )
    promoted = app_repo.shiplane("promote", "prod")
    assert promoted.code == 0, promoted.stdout
    assert json.loads(https_get(https, NOTES, ca, "/_deploy/version").body)["sha"] == sha


def _raw_https(port: int, name: str, root: bytes, data: bytes) -> bytes:
    """Send ``data`` over TLS (SNI ``name``) and read until the door closes."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client_context(root).wrap_socket(raw, server_hostname=name) as sock,
    ):
        sock.sendall(data)
        received = b""
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def _hsts(raw: bytes) -> str | None:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name == "strict-transport-security":
            return value.strip()
    return None


def test_the_doors_own_answers_carry_hsts_on_https(tmp_path: Path) -> None:
    """Not only relayed answers: the maintenance page, 421/413/431/400, 502/503 and the
    /_deploy/* answers of an HTTPS door with HSTS carry it; nothing over plain HTTP does."""
    chain, key, ca = own_certificate(tmp_path / "own", [NOTES])
    hsts = "max-age=600"

    async def scenario() -> dict[str, tuple[int, str | None]]:
        core = ServerCore(ServerLayout(tmp_path / "home"), "server-token")
        shared, http, own = free_port(), free_port(), free_port()
        tls = TlsSettings(http_port=http, cert=str(chain), key=str(key), hsts=600)
        limits = Limits(max_head=4096, max_body=10, hold_timeout=0.2)
        settings = DoorSettings(
            port=own, shared_port=shared, domains=(NOTES,), tls=tls, limits=limits
        )
        seen: dict[str, tuple[int, str | None]] = {}

        async def ask(label: str, data: bytes, host: str = NOTES) -> None:
            get = b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
            request = get % (data, host.encode()) if data.startswith(b"/") else data
            raw = await asyncio.to_thread(_raw_https, shared, NOTES, ca, request)
            seen[label] = (status_of(raw), _hsts(raw))

        try:
            door = core.ensure_frontdoor(EnvKey("notes", "prod"), settings)
            await asyncio.sleep(0.2)  # the listeners start
            await ask("nothing serves", b"/")
            await ask("health", b"/_deploy/health")
            await ask("version", b"/_deploy/version")
            await ask("421", b"/", host="other.test")
            pad = b"X-Pad: %s\r\n" % (b"p" * 100)
            await ask("431", b"GET / HTTP/1.1\r\nHost: notes.test\r\n" + pad * 80 + b"\r\n")
            await ask("400", b"GET / HTTP/1.1\nHost: notes.test\n\n")
            door.hold()
            await ask("held", b"/")
            door.release()
            door.maintenance(True)
            await ask("maintenance", b"/")
            door.maintenance(False)
            door.switch(Upstream("gone", "127.0.0.1", free_port(), {"sha": "gone"}))
            await ask("502", b"/")
            big = b"POST / HTTP/1.1\r\nHost: notes.test\r\nContent-Length: 100\r\n\r\n"
            await ask("413", big)
            plain = (
                b"GET /_deploy/health HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                % NOTES.encode()
            )
            for label, port in (("own port", own), ("http port", http)):
                raw = await asyncio.to_thread(exchange_raw, port, plain)
                seen[label] = (status_of(raw), _hsts(raw))
        finally:
            await core.shutdown()
        return seen

    seen = asyncio.run(scenario())
    assert seen == {
        "nothing serves": (503, hsts),
        "health": (503, hsts),
        "version": (503, hsts),
        "421": (421, hsts),
        "431": (431, hsts),
        "400": (400, hsts),
        "held": (503, hsts),
        "maintenance": (503, hsts),
        "502": (502, hsts),
        "413": (413, hsts),
        "own port": (503, None),  # plain HTTP: no HSTS; "gone" serves nothing: not healthy
        "http port": (308, None),
    }
