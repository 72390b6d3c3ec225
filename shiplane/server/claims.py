"""Who may open a front door where: a port or a domain belongs to one (app, environment), and
a port shared by host name is shared only with the same scheme and listen address."""

from __future__ import annotations

from collections.abc import Mapping

from shiplane.frontdoor.builtin import BuiltinFrontDoor
from shiplane.frontdoor.settings import DoorSettings
from shiplane.server.envkey import EnvKey


class PortInUse(Exception):
    pass


def shared_ports(settings: DoorSettings) -> dict[int, str]:
    """The ports a door shares with others by host name, and the scheme each serves."""
    ports: dict[int, str] = {}
    if settings.shared_port is not None:
        ports[settings.shared_port] = "https" if settings.tls is not None else "http"
    if settings.tls is not None and settings.shared_port is not None:
        ports[settings.tls.http_port] = "http"
    return ports


def check_claims(
    key: EnvKey, settings: DoorSettings, frontdoors: Mapping[EnvKey, BuiltinFrontDoor]
) -> None:
    """Refuse a port or a domain that another app or environment holds, naming both."""
    mine = shared_ports(settings)
    for other, door in frontdoors.items():
        if other == key:
            continue
        held = door.settings
        taken = set(settings.domains) & set(held.domains)
        if taken:
            raise PortInUse(
                f"domain {sorted(taken)[0]} for {key} is already claimed by {other}; "
                "give each environment its own domains"
            )
        theirs = shared_ports(held)
        if settings.port == held.port or settings.port in theirs:
            raise PortInUse(f"port {settings.port} for {key} is already the front door of {other}")
        for port, scheme in mine.items():
            if port == held.port:
                raise PortInUse(f"port {port} for {key} is already the front door of {other}")
            if port not in theirs:
                continue
            if theirs[port] != scheme:
                raise PortInUse(
                    f"port {port} for {key} would serve {scheme} but {other} serves "
                    f"{theirs[port]} there; share a port only with the same scheme"
                )
            if held.host != settings.host:
                raise PortInUse(
                    f"port {port} for {key} listens on {settings.host} but {other} shares "
                    f"it on {held.host}; use the same listen address"
                )
