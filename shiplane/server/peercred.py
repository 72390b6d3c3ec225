"""Who is on the other end of the control socket: the kernel's answer (SO_PEERCRED), not the
client's. Tokens are bound to the OS user that first presents them, and on an enforced host a
person's decision must come from a user no agent works as (shiplane.operations.decide).

uvicorn does not put the transport in the ASGI scope, so this protocol puts the peer's uid in
the connection's ``state`` (``request.state.peer_uid`` in Starlette) when it is made.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

_UCRED = struct.Struct("3i")  # pid, uid, gid


def peer_uid(transport: asyncio.BaseTransport) -> int | None:
    sock: Any = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except OSError:
        return None
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


class PeerCredProtocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A copy per connection: app_state is shared by every connection of the server.
        self.app_state = {**self.app_state, "peer_uid": peer_uid(transport)}
