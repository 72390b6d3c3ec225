"""HTTPS for the front door on real parts: certificates from a real ACME CA (pebble), served by
SNI over real TLS handshakes, renewed under load, and the files they live in."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shiplane.errors import CertificateError
from shiplane.frontdoor.acme_client import AcmeClient, ChallengeResponder
from shiplane.frontdoor.redirect import hsts_value
from shiplane.frontdoor.renewal import Renewer
from shiplane.frontdoor.tls import CertificateStore, SniContext
from tests.support.pebble import Pebble, pebble
from tests.support.tls_site import (
    TlsSite,
    client_context,
    http_get,
    https_get,
    read_answer,
    request,
    serial_of,
)

A, B = "shop.example.test", "blog.example.test"


@dataclass
class Stack:
    ca: Pebble
    site: TlsSite
    store: CertificateStore
    responder: ChallengeResponder
    client: AcmeClient
    root: bytes  # pebble's root: what a browser would trust

    def renewer(self, hosts: list[str], interval: float = 3600, retry: float = 60) -> Renewer:
        return Renewer(
            self.client, self.store, self.site.sni, hosts, interval=interval, retry=retry
        )


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    responder = ChallengeResponder()
    loop = getattr(request, "param", "uvloop")
    site = TlsSite(SniContext(), responder, hsts=hsts_value(600), loop=loop).start()
    try:
        with pebble(tmp_path / "pebble", site.http_port) as ca:
            client = AcmeClient(
                ca.directory,
                tmp_path / "acme" / "account.pem",
                responder,
                email="ops@example.com",
                ca_bundle=ca.ca_bundle,
                timeout=30,
            )
            store = CertificateStore(tmp_path / "certs")
            yield Stack(ca, site, store, responder, client, ca.root_pem())
    finally:
        site.close()


@pytest.mark.parametrize("stack", ["uvloop", "asyncio"], indirect=True)
def test_certificates_from_acme_are_served_by_sni(stack: Stack, tmp_path: Path) -> None:
    renewer = stack.renewer([A, B])
    assert renewer.load() == [A, B]  # nothing stored yet
    results = stack.site.call(renewer.check())
    assert set(results) == {A, B}
    assert stack.responder.pending() == 0  # challenges are forgotten once answered

    # Each name gets its own certificate, verified against the CA's root and the name.
    a = https_get(stack.site.https_port, A, stack.root)
    b = https_get(stack.site.https_port, B, stack.root)
    assert (a.status, a.body, b.body) == (200, b"hello " + A.encode(), b"hello " + B.encode())
    assert a.serial == stack.store.info(A).serial  # type: ignore[union-attr]
    assert b.serial == stack.store.info(B).serial  # type: ignore[union-attr]
    assert a.serial != b.serial
    assert a.headers["strict-transport-security"] == "max-age=600"

    # Keys and the account key are the server's alone.
    for key in (*stack.store.paths(A), *stack.store.paths(B), tmp_path / "acme" / "account.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for directory in (stack.store.root, stack.store.paths(A)[0].parent, tmp_path / "acme"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    assert stack.store.hosts() == sorted([A, B])

    # A restart serves what is stored, without ordering again.
    fresh = SniContext()
    Renewer(stack.client, stack.store, fresh, [A, B]).load()
    assert fresh.served(A).serial == a.serial  # type: ignore[union-attr]

    # Plain HTTP redirects to HTTPS, keeping the path; challenge paths are never redirected.
    redirect = http_get(stack.site.http_port, A, "/cart?id=7")
    assert redirect.status == 308
    assert redirect.headers["location"] == f"https://{A}:{stack.site.https_port}/cart?id=7"
    assert http_get(stack.site.http_port, A, "/.well-known/acme-challenge/gone").status == 404


@pytest.mark.parametrize("stack", ["uvloop", "asyncio"], indirect=True)
def test_an_unknown_name_gets_no_certificate(stack: Stack) -> None:
    stack.site.call(stack.renewer([A]).check())
    port = stack.site.https_port
    # Even a client that verifies nothing is shown no certificate: the handshake is aborted
    # while the server reads the ClientHello. asyncio closes the connection without flushing
    # the unrecognized_name alert, so the client sees an EOF (a blocking server sends it).
    for name in ("other.example.test", None):
        with pytest.raises(ssl.SSLError, match=r"UNRECOGNIZED_NAME|UNEXPECTED_EOF"):
            https_get(port, name, None)
    assert https_get(port, A, stack.root).status == 200  # the listener is unharmed

    # With unknown="default", an unknown name gets the default site's certificate, which a
    # verifying client refuses for the name it asked for.
    stack.site.sni.unknown, stack.site.sni.default_host = "default", A
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        https_get(port, "other.example.test", stack.root)


@pytest.mark.parametrize("stack", ["uvloop", "asyncio"], indirect=True)
def test_renewal_swaps_the_certificate_under_load(stack: Stack) -> None:
    renewer = stack.renewer([A])
    stack.site.call(renewer.check())
    old = stack.site.sni.served(A).serial  # type: ignore[union-attr]
    port = stack.site.https_port

    # A connection that is open across the renewal keeps working on its old certificate.
    kept = client_context(stack.root).wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10),
        server_hostname=A,
    )
    kept.sendall(request(A, close=False))
    assert read_answer(kept)[0] == 200

    seen: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def clients() -> None:
        while not stop.is_set():
            try:
                seen.append(https_get(port, A, stack.root).serial or 0)
            except (OSError, ssl.SSLError) as exc:
                failures.append(exc)

    threads = [threading.Thread(target=clients) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        new = stack.site.call(renewer.renew(A)).serial
        deadline = time.monotonic() + 10
        while new not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)

    assert failures == []
    assert new != old and seen[0] == old and seen[-1] == new
    assert set(seen) == {old, new}
    assert len(seen) > 20
    kept.sendall(request(A, close=True))
    assert read_answer(kept)[0] == 200 and serial_of(kept) == old
    kept.close()
    assert [s.obtained for s in renewer.status()] == [2]  # the first one, and the renewal


def test_background_renewer_obtains_and_reports_failures(stack: Stack) -> None:
    renewer = stack.renewer([A], interval=3600, retry=3600)

    async def start_and_wait() -> None:
        renewer.start()
        deadline = time.monotonic() + 30
        while stack.site.sni.served(A) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await renewer.close()

    stack.site.call(start_and_wait())
    served = stack.site.sni.served(A)
    assert served is not None and https_get(stack.site.https_port, A, stack.root).serial == (
        served.serial
    )

    # A CA that cannot reach the challenge: the error is reported, retried later, and the old
    # certificate keeps serving.
    stack.site.responder = ChallengeResponder()  # the listener no longer knows the tokens
    with pytest.raises(CertificateError, match=f"did not issue a certificate for {A}"):
        stack.site.call(renewer.renew(A))
    (status,) = renewer.status()
    assert status.last_error and status.retry_at is not None
    assert stack.site.call(renewer.check()) == {}  # waiting out the retry
    assert https_get(stack.site.https_port, A, stack.root).serial == served.serial


def test_acme_server_is_verified_with_the_ca_bundle(stack: Stack, tmp_path: Path) -> None:
    untrusting = AcmeClient(
        stack.ca.directory, tmp_path / "other" / "account.pem", stack.responder, timeout=10
    )
    with pytest.raises(CertificateError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.obtain([A])


def own_certificate(directory: Path, names: list[str]) -> tuple[Path, Path, bytes]:
    """A self-made CA and a certificate for ``names``: (chain, key, CA PEM)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "own CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    chain, key_path = directory / "chain.pem", directory / "key.pem"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, key_path, ca.public_bytes(serialization.Encoding.PEM)


def test_own_certificate_files_and_bad_pairs(tmp_path: Path) -> None:
    sni = SniContext()
    site = TlsSite(sni, ChallengeResponder()).start()
    try:
        chain, key, ca = own_certificate(tmp_path / "own", ["*.example.test", "example.test"])
        served = sni.install(A, chain, key)  # the wildcard covers the name
        assert https_get(site.https_port, A, ca).serial == served.serial

        other_chain, other_key, _ = own_certificate(tmp_path / "other", [A])
        with pytest.raises(CertificateError, match="KEY_VALUES_MISMATCH") as mismatch:
            sni.install(A, chain, other_key)  # a key from another pair
        assert mismatch.value.next_action == (
            "give a PEM chain and the PEM private key that belongs to it"
        )
        with pytest.raises(CertificateError, match=f"not {B}"):
            sni.install(B, other_chain, other_key)  # a certificate for another name
        with pytest.raises(CertificateError, match="missing"):
            sni.install(A, tmp_path / "nope.pem", key)
        # A failed install changes nothing: the earlier certificate still serves.
        assert https_get(site.https_port, A, ca).serial == served.serial
    finally:
        site.close()


def test_store_refuses_a_torn_pair_and_bad_names(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "certs")
    chain, key, _ = own_certificate(tmp_path / "own", [A])
    _, other_key, _ = own_certificate(tmp_path / "other", [A])
    info = store.save(A, chain.read_bytes(), key.read_bytes())
    assert store.info(A) == info and store.hosts() == [A]
    # A crash between the two renames leaves a mismatched pair: it is refused, not served, and
    # the renewer treats it as missing.
    store.paths(A)[1].write_bytes(other_key.read_bytes())
    with pytest.raises(CertificateError):
        store.load(A)
    assert store.info(A) is None
    for bad in ("../etc", "a/b", "*.example.test", "host:443", ""):
        with pytest.raises(CertificateError, match="is not a host name"):
            store.paths(bad)
    assert not any(p.name.startswith(".") for p in store.paths(A)[0].parent.iterdir())
