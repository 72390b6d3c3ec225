"""A real ACME CA for tests: Debian's pebble, with pebble-challtestsrv as its DNS.

pebble validates HTTP-01 by resolving the host name through ``-dnsserver`` and fetching
``http://<name>:<httpPort>/.well-known/acme-challenge/<token>``; challtestsrv answers every A
query with 127.0.0.1, so any name reaches the test's HTTP listener on ``http_port``. pebble's own
HTTPS (ACME API and management API) needs a certificate, which the package does not ship: the
harness makes a small CA for it (``ca_bundle``, what the ACME client verifies pebble with).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.app_repo import free_port


@dataclass(frozen=True)
class Pebble:
    directory: str  # the ACME directory URL
    ca_bundle: Path  # verifies pebble's own HTTPS
    management: str  # https://127.0.0.1:PORT of the management API

    def root_pem(self) -> bytes:
        """The root that signs what pebble issues (new at every start of pebble)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(f"{self.management}/roots/0", context=context) as response:
            return bytes(response.read())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_listener_cert(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, pebble's certificate, pebble's key) for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("shiplane test CA"))
        .issuer_name(_name("shiplane test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "pebble-cert.pem", directory / "pebble-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def pebble(directory: Path, http_port: int) -> Iterator[Pebble]:
    """Run pebble (and its DNS) until the block ends; both are stopped on any exit."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_listener_cert(directory)
    acme_port, management_port, dns_port = free_port(), free_port(), free_port()
    config = directory / "pebble-config.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme_port}",
                    "managementListenAddress": f"127.0.0.1:{management_port}",
                    "certificate": str(cert),
                    "privateKey": str(key),
                    "httpPort": http_port,
                    "tlsPort": free_port(),  # TLS-ALPN-01: unused, but pebble wants a port
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",  # validate at once, not after a random pause
        "PEBBLE_VA_ALWAYS_VALID": "0",  # really fetch the challenge from the test's listener
        "PEBBLE_WFE_NONCEREJECT": "0",  # no random badNonce rejections: tests stay repeatable
        "PEBBLE_AUTHZREUSE": "0",  # every order is validated anew, as a renewal may well be
    }
    log = (directory / "pebble.log").open("wb")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(
            subprocess.Popen(
                [
                    "pebble-challtestsrv",
                    "-dns01",
                    f"127.0.0.1:{dns_port}",
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    f"127.0.0.1:{free_port()}",
                    "-defaultIPv6",
                    "",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
        )
        processes.append(
            subprocess.Popen(
                ["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{dns_port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=directory,
            )
        )
        server = Pebble(
            directory=f"https://127.0.0.1:{acme_port}/dir",
            ca_bundle=ca,
            management=f"https://127.0.0.1:{management_port}",
        )
        _wait_until_serving(server, processes)
        yield server
    finally:
        for process in reversed(processes):
            _stop(process)
        log.close()


def _wait_until_serving(server: Pebble, processes: list[subprocess.Popen[bytes]]) -> None:
    context = ssl.create_default_context(cafile=str(server.ca_bundle))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise RuntimeError("pebble or its DNS exited at start; see pebble.log")
        try:
            with urllib.request.urlopen(server.directory, context=context, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("pebble did not serve its directory within 20 s")
