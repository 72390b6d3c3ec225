"""Front-door settings of an environment: where it listens, the host names it answers, whom it
trusts for X-Forwarded-*, and its limits (``[environments.NAME.front_door]``).

The defaults are safe for a small app exposed to the internet: a client gets 10 s to send a
request head (slowloris), 60 s of keep-alive silence, 100 MiB of body; one listener holds at most
1024 client connections and 128 from one address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shiplane.config.tls import TlsConfig

DEFAULT_LISTEN = "127.0.0.1"  # this machine only: exposing a front door is explicit
DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)


class FrontDoorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    header_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a client has to send a whole request head."
    )
    idle_timeout: float = Field(
        default=60.0, gt=0, description="Seconds a kept-alive client connection may stay silent."
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="Seconds between two reads of a request body."
    )
    upstream_connect_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to connect to the app instance."
    )
    upstream_read_timeout: float = Field(
        default=60.0, gt=0, description="Seconds the app may stay silent while answering."
    )
    max_head_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request head (line + headers); 431."
    )
    max_body_bytes: int = Field(
        default=100 * 1024 * 1024, ge=0, description="Largest request body; larger gets 413."
    )
    max_connections: int = Field(
        default=1024, ge=1, description="Open client connections on the listener."
    )
    max_connections_per_client: int = Field(
        default=128, ge=1, description="Open client connections from one address."
    )
    hold_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a request waits during a hold; then 503."
    )
    retry_after: int = Field(
        default=5, ge=0, description="Retry-After seconds of a 503 (hold, maintenance)."
    )

    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Front-door processes sharing the port (SO_REUSEPORT); 1: one, in the"
        " server. More use more cores; not with domains or tls.",
    )

    def limits(self) -> dict[str, Any]:
        """As shiplane.frontdoor.settings.Limits takes them."""
        data = self.model_dump(exclude={"workers"})
        data["max_head"] = data.pop("max_head_bytes")
        data["max_body"] = data.pop("max_body_bytes")
        return data


def check_listen(value: str) -> str:
    """``HOST`` or ``HOST:PORT`` (``[::1]:PORT`` for IPv6)."""
    host, _port = split_listen(value)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"listen = {value!r}: use an IP address, optionally with the port, e.g. "
            '"127.0.0.1" (this machine only, the default) or "0.0.0.0:80" (everyone)'
        ) from None
    return value


def split_listen(value: str) -> tuple[str, int | None]:
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if value.count(":") == 1:
        host, port = value.split(":")
        if not port.isdigit():
            raise ValueError(f'listen = {value!r}: the port must be a number, e.g. "0.0.0.0:80"')
        return host, int(port)
    return value, None


def check_domains(value: list[str]) -> list[str]:
    for domain in value:
        if domain != domain.lower() or not DOMAIN_RE.match(domain):
            raise ValueError(
                f"domains: {domain!r} is not a host name; write it lowercase without scheme"
                ' or port, e.g. "dev.example.com"'
            )
    if len(set(value)) != len(value):
        raise ValueError("domains: each host name once")
    return value


def check_cidrs(value: list[str]) -> list[str]:
    for cidr in value:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(
                f'trusted_proxies: {cidr!r} is not an address or network; e.g. "10.0.0.0/8"'
            ) from None
    return value


def door_settings(
    port: int,
    listen: str,
    domains: list[str],
    trusted: list[str],
    config: FrontDoorConfig,
    tls: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The plain settings the server's front door takes (shiplane.frontdoor.settings); ``tls``
    from ``tls_settings``."""
    host, listen_port = split_listen(listen)
    shared = listen_port if domains and listen_port and listen_port != port else None
    return {
        "port": port,
        "host": host,
        "shared_port": shared,
        "domains": list(domains),
        "trusted_proxies": list(trusted),
        "limits": config.limits(),
        "tls": tls,
        "workers": config.workers,
    }


def tls_settings(tls: TlsConfig, files: Mapping[str, Path]) -> dict[str, Any]:
    """The plain TLS settings (shiplane.frontdoor.settings.TlsSettings), with the server-side
    paths of the files the config names (``files``: cert, key, ca_bundle)."""
    return {
        "http_port": tls.http_port,
        "acme": tls.acme,
        "directory": tls.directory,
        "email": tls.email,
        "ca_bundle": str(files["ca_bundle"]) if "ca_bundle" in files else None,
        "cert": str(files["cert"]) if "cert" in files else None,
        "key": str(files["key"]) if "key" in files else None,
        "renew_before_days": tls.renew_before_days,
        "renew_fraction": tls.renew_fraction,
        "redirect_http": tls.redirect_http,
        "hsts": tls.hsts_max_age,
    }
