"""HTTPS for the front door: where certificates live, and the one TLS context that serves them.

``CertificateStore`` keeps one directory per host name (``<root>/<host>/fullchain.pem`` and
``key.pem``); keys are written 0600 and directories 0700, each file through write-then-rename so
a reader sees the old file or the new one, never half of one.

``SniContext`` is what a listener passes to ``asyncio.start_server(ssl=...)``: its ``context``
picks a per-host ``ssl.SSLContext`` from the client's SNI name in ``sni_callback``. A renewal
builds the new per-host context first and then swaps it into the map (one dict assignment), so
the listener never restarts: handshakes from then on get the new certificate, and connections
already open keep the context they started with.

A name with no certificate (or a client that sends no SNI) gets, by ``unknown``:

- ``"reject"`` (the default): the handshake is aborted while the ClientHello is read, before
  any certificate is sent, so no client is ever shown another site's certificate. The callback
  asks for a fatal ``unrecognized_name`` alert; a blocking ``ssl`` socket sends it, but asyncio's
  TLS transport (and uvloop's) closes the connection without flushing it, so clients of the
  front door see the connection closed during the handshake;
- ``"default"``: the ``default_host``'s certificate, as nginx's default server does (the client
  sees a name mismatch and refuses unless it does not verify names).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shiplane.errors import CertificateError

CHAIN = "fullchain.pem"
KEY = "key.pem"
# Lowercase DNS labels only: a host name becomes a directory name, so nothing else may pass.
HOST_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
UnknownName = Literal["reject", "default"]


def check_host(host: str) -> str:
    """The host name, lowercased; CertificateError when it is not a plain DNS name."""
    name = host.strip().rstrip(".").lower()
    if not HOST_RE.match(name):
        raise CertificateError(
            f"{host!r} is not a host name",
            step="tls",
            next_action="use a DNS name such as app.example.com (no port, no wildcard, no path)",
        )
    return name


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What the door needs to know about a served certificate (the leaf of the chain)."""

    host: str
    serial: int
    names: tuple[str, ...]  # the DNS names of its subjectAltName
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before

    def remaining(self, now: dt.datetime | None = None) -> dt.timedelta:
        return self.not_after - (now or dt.datetime.now(dt.UTC))


def new_private_key() -> bytes:
    """A fresh P-256 key in PKCS#8 PEM: small, fast to make, accepted by every ACME CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate for ``names`` is valid for ``host`` (one-label wildcards)."""
    for name in names:
        if name == host:
            return True
        if name.startswith("*.") and host.partition(".")[2] == name[2:] and "." in name[2:]:
            return True
    return False


def describe(host: str, chain_pem: bytes) -> CertificateInfo:
    """Read the leaf certificate of a PEM chain."""
    try:
        leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    except ValueError as exc:
        raise CertificateError(
            f"the certificate for {host} is not a PEM certificate chain: {exc}",
            step="tls",
            next_action="give a PEM file that starts with the site's certificate",
        ) from exc
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(name.lower() for name in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertificateInfo(
        host=host,
        serial=leaf.serial_number,
        names=names,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
    )


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as 0600 through a temporary file and a rename: a crash leaves
    the old file or the new one, and the bytes are never readable by others, not even briefly."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir leaves an existing directory's mode as it was
    return path


class CertificateStore:
    """Certificates on disk, one directory per host name. Safe to share between threads."""

    def __init__(self, root: Path) -> None:
        self.root = private_dir(root)
        # Saving writes two files; the lock keeps a reader in this process from pairing a new
        # chain with an old key.
        self._lock = threading.Lock()

    def paths(self, host: str) -> tuple[Path, Path]:
        """(fullchain.pem, key.pem) of ``host``, whether they exist or not."""
        directory = self.root / check_host(host)
        return directory / CHAIN, directory / KEY

    def hosts(self) -> list[str]:
        """The host names that have both files."""
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if HOST_RE.match(entry.name) and (entry / CHAIN).is_file() and (entry / KEY).is_file()
        )

    def save(self, host: str, chain_pem: bytes, key_pem: bytes) -> CertificateInfo:
        """Store a certificate for ``host`` after checking that the key matches the chain."""
        info = describe(check_host(host), chain_pem)
        chain_path, key_path = self.paths(info.host)
        with self._lock:
            private_dir(chain_path.parent)
            # The key first: a crash between the two renames leaves a pair that ``load``
            # refuses (mismatch), which the renewer treats as missing and obtains anew.
            write_private(key_path, key_pem)
            write_private(chain_path, chain_pem)
        self.load(info.host)  # the pair on disk must build a context, or nothing is served
        return info

    def load(self, host: str) -> tuple[ssl.SSLContext, CertificateInfo]:
        """A server context for ``host`` from its stored files; CertificateError when missing,
        unreadable or when the key does not match."""
        chain_path, key_path = self.paths(host)
        with self._lock:
            return load_pair(check_host(host), chain_path, key_path)

    def info(self, host: str) -> CertificateInfo | None:
        """The stored certificate of ``host``; None when there is none (or it is unreadable)."""
        try:
            return self.load(host)[1]
        except CertificateError:
            return None


def server_context() -> ssl.SSLContext:
    """The settings every server context of the door shares."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The relay speaks HTTP/1.1 only; saying so keeps an h2-first client from guessing.
    context.set_alpn_protocols(["http/1.1"])
    return context


def load_pair(host: str, chain: Path, key: Path) -> tuple[ssl.SSLContext, CertificateInfo]:
    """A server context for ``host`` from a chain and key file (stored, or the user's own)."""
    try:
        chain_pem = chain.read_bytes()
        context = server_context()
        context.load_cert_chain(chain, key)
    except FileNotFoundError as exc:
        raise CertificateError(
            f"no certificate file for {host}: {exc.filename} is missing",
            step="tls",
            next_action="check tls.cert and tls.key, or let ACME obtain one (tls.acme = true)",
        ) from exc
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(
            f"cannot load the certificate for {host} from {chain} and {key}: {exc}",
            step="tls",
            next_action="give a PEM chain and the PEM private key that belongs to it",
        ) from exc
    info = describe(host, chain_pem)
    if not covers(info.names, host):
        raise CertificateError(
            f"the certificate in {chain} is for {', '.join(info.names) or 'no DNS name'},"
            f" not {host}",
            step="tls",
            next_action=f"give a certificate whose subjectAltName names {host}",
        )
    return context, info


class SniContext:
    """One server ``ssl.SSLContext`` for a listener; certificates per host name, swappable."""

    def __init__(self, unknown: UnknownName = "reject", default_host: str | None = None) -> None:
        if unknown == "default" and default_host is None:
            raise ValueError("unknown='default' needs a default_host")
        self.unknown = unknown
        self.default_host = check_host(default_host) if default_host else None
        # host -> (context, info). Replaced whole per host: the callback reads one entry, so
        # it sees the old pair or the new one (a dict item assignment is atomic in CPython).
        self._sites: dict[str, tuple[ssl.SSLContext, CertificateInfo]] = {}
        self.context = server_context()
        self.context.sni_callback = self.sni_callback

    def install(self, host: str, chain: Path, key: Path) -> CertificateInfo:
        """Serve the certificate in ``chain``/``key`` for ``host`` from the next handshake on.
        Raises CertificateError (and keeps serving what it had) when the files do not load."""
        name = check_host(host)
        context, info = load_pair(name, chain, key)
        self._sites[name] = (context, info)
        return info

    def install_from(self, store: CertificateStore, host: str) -> CertificateInfo:
        """Serve ``host``'s stored certificate (after a save, or at start)."""
        context, info = store.load(host)
        self._sites[check_host(host)] = (context, info)
        return info

    def remove(self, host: str) -> None:
        self._sites.pop(check_host(host), None)

    def served(self, host: str) -> CertificateInfo | None:
        site = self._sites.get(check_host(host))
        return site[1] if site else None

    def hosts(self) -> list[str]:
        return sorted(self._sites)

    def select(self, server_name: str | None) -> ssl.SSLContext | None:
        """The context a handshake for ``server_name`` gets; None: abort it."""
        site = self._sites.get(server_name.lower().rstrip(".")) if server_name else None
        if site is None and self.unknown == "default" and self.default_host is not None:
            site = self._sites.get(self.default_host)
        return site[0] if site else None

    def sni_callback(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        """OpenSSL's servername callback: switch the connection to the host's context."""
        context = self.select(server_name)
        if context is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        connection.context = context
        return None
