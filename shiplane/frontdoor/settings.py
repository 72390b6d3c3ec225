"""What one front door is told at run time: where it listens, which host names it answers,
whom it trusts, and its limits. The config model (``shiplane/config/frontdoor.py``) validates
what users write; this is the plain form the server keeps, stores with the instance spec and
restores after a restart, so the server does not depend on the config package."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_BIND = "127.0.0.1"
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = 10.0  # first byte of a head to its end (slowloris)
    idle_timeout: float = 60.0  # a kept-alive client connection with no request
    body_timeout: float = 30.0  # between two reads of a request body
    upstream_connect_timeout: float = 5.0
    upstream_read_timeout: float = 60.0  # between two reads of a response
    max_head: int = 64 * 1024  # request line + headers; over: 431
    max_body: int = 100 * MIB  # request body; over: 413
    max_connections: int = 1024  # open client connections on one listener
    max_connections_per_client: int = 128  # the same, per client address
    hold_timeout: float = 10.0  # how long a request waits for a release; then 503
    retry_after: int = 5  # seconds, in the Retry-After of a 503 (hold, maintenance)


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """HTTPS on the shared port (``DoorSettings.shared_port``) for the door's domains: with
    ACME (``acme``) or the user's own files (``cert``/``key``, server-side paths)."""

    http_port: int = 80  # plain HTTP on the door's host: ACME challenges, then redirect or serve
    acme: bool = False
    directory: str = ""
    email: str | None = None
    ca_bundle: str | None = None  # verifies the ACME server's own HTTPS
    cert: str | None = None
    key: str | None = None
    renew_before_days: float = 30.0
    renew_fraction: float = 1 / 3
    redirect_http: bool = True
    hsts: int | None = None  # max-age seconds; None: no header

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TlsSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True, slots=True)
class DoorSettings:
    port: int  # the door's own listener (on ``host``; on loopback when ``shared_port`` is set)
    host: str = DEFAULT_BIND
    shared_port: int | None = None  # a listener on ``host`` shared by domains, routed by Host
    domains: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    access_log: str | None = None  # file path; rotated
    tls: TlsSettings | None = None  # HTTPS on ``shared_port``; plain HTTP on ``tls.http_port``
    workers: int = 1  # over 1: that many processes share ``port`` (workers.py)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], port: int) -> DoorSettings:
        """Read stored settings; unknown keys (from a newer shiplane) are ignored."""
        known = {f.name for f in fields(Limits)}
        limits = Limits(**{k: v for k, v in (data.get("limits") or {}).items() if k in known})
        return cls(
            port=int(data.get("port") or port),
            host=str(data.get("host") or DEFAULT_BIND),
            shared_port=int(data["shared_port"]) if data.get("shared_port") else None,
            domains=tuple(d.lower() for d in data.get("domains") or ()),
            trusted_proxies=tuple(data.get("trusted_proxies") or ()),
            limits=limits,
            access_log=data.get("access_log"),
            tls=TlsSettings.from_dict(data["tls"]) if data.get("tls") else None,
            workers=int(data.get("workers") or 1),
        )

    @property
    def own_host(self) -> str:
        """Where the own listener binds: loopback when the public side is the shared one."""
        return DEFAULT_BIND if self.shared_port else self.host


class TrustedProxies:
    """Peers whose X-Forwarded-* headers are kept (extended), not replaced."""

    def __init__(self, cidrs: tuple[str, ...]) -> None:
        self.networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def __contains__(self, peer: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


class LimitLog:
    """Counts limits that trip and logs them, at most ``burst`` lines per ``interval`` seconds
    so that a flood of bad clients cannot fill the disk; the next line says how many were
    left out."""

    def __init__(self, name: str, burst: int = 10, interval: float = 10.0) -> None:
        self.name = name
        self.counts: Counter[str] = Counter()
        self.burst = burst
        self.interval = interval
        self._window = 0.0
        self._logged = 0
        self._suppressed = 0
        self._log = logging.getLogger("shiplane.frontdoor")

    def trip(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        now = time.monotonic()
        if now - self._window >= self.interval:
            if self._suppressed:
                self._log.warning(
                    "%s: %d more limit events not logged", self.name, self._suppressed
                )
            self._window, self._logged, self._suppressed = now, 0, 0
        if self._logged < self.burst:
            self._logged += 1
            self._log.warning("%s: %s (%s)", self.name, kind, detail)
        else:
            self._suppressed += 1
