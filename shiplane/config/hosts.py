"""SSH destinations of remote shiplane servers: ``[user@]host[:port]`` (``--host`` and an
environment's ``server`` key). Checked strictly: the value becomes an ssh argument, so nothing
that ssh could read as an option (a leading ``-``) or a shell could read as syntax gets by."""

from __future__ import annotations

import re
from dataclasses import dataclass

_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]{2,45}$")
FIX = 'write it as [user@]host[:port], e.g. "deploy@10.231.5.2" or "deploy@example.com:2222"'


@dataclass(frozen=True)
class SshHost:
    user: str | None
    host: str
    port: int | None = None

    @property
    def destination(self) -> str:
        """What ssh is given as its destination (the port goes in ``-p``)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"{self.user}@{shown}{port}" if self.user else f"{shown}{port}"


def parse_host(value: str) -> SshHost:
    """``[user@]host[:port]``; ValueError says what is wrong and how to write it."""
    text = value.strip()
    user: str | None = None
    if "@" in text:
        user, _, text = text.rpartition("@")
        if not _USER.match(user):
            raise ValueError(f"user {user!r} is not a valid login name; {FIX}")
    port: int | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if not _IPV6.match(host) or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not a valid address; {FIX}")
        has_port, port_text = bool(rest), rest[1:]
    else:
        host, colon, port_text = text.partition(":")
        has_port = bool(colon)
        if not _NAME.match(host):
            raise ValueError(f"{host!r} is not a valid host name or address; {FIX}")
    if has_port:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"port {port_text!r} is not a port (1-65535); {FIX}")
        port = int(port_text)
    return SshHost(user=user, host=host, port=port)
