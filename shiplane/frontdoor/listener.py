"""A front-door listener: one bound address, its client connections, and the routing table that
picks the environment (the ``Site``) for each request by its Host header.

A port-only environment has a listener of its own (its site is the default: every Host goes to
it). Environments with ``domains`` may share one listener; a request naming a host nobody
claimed gets 421, never another site. ``ssl_context`` is the seam for TLS: the same listener
wraps its connections, and SNI picks the certificate in the context's callback.

Connection limits live here because a connection exists before any request says where it goes:
the listener caps its own open connections, in total and per client address, and draws from a
server-wide ``ConnectionBudget`` so that one environment's flood cannot take the descriptors the
others and the control socket need. Each refused connection is closed at once and counted.
Each accepted connection is a ``client.ClientProtocol`` (the fast path, and the streamed one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import ssl
from collections import Counter
from typing import Protocol

from shiplane.frontdoor.client import ClientProtocol, Connection
from shiplane.frontdoor.settings import LimitLog, Limits
from shiplane.frontdoor.sides import Challenges
from shiplane.frontdoor.wire import Head

__all__ = ["Challenges", "Connection", "ConnectionBudget", "Listener", "Site"]
# Descriptors kept free for the control socket, state.db, logs, app processes and upstreams.
FD_RESERVE = 512


class ConnectionBudget:
    """Open front-door client connections across every listener of the server."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


def reserve_descriptors() -> ConnectionBudget:
    """Raise the soft RLIMIT_NOFILE to the hard limit, and cap client connections well below it:
    a relayed request holds two descriptors (client, upstream) and pools keep idle ones."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return ConnectionBudget(max(64, (soft - FD_RESERVE) // 3))


class Site(Protocol):
    """What a listener asks of an environment's door, once per request."""

    name: str

    async def handle(self, conn: Connection, head: Head) -> bool:
        """Answer ``head`` on ``conn``; False when the connection must close afterwards."""


class Listener:
    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        budget: ConnectionBudget | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.budget = budget or ConnectionBudget(1 << 30)
        self.limits = limits or Limits()
        self.default: Site | None = None
        self.domains: dict[str, Site] = {}
        self.log = LimitLog(f"listener {host}:{port}")
        self.open = 0
        self.per_client: Counter[str] = Counter()
        self.connections: set[asyncio.StreamWriter] = set()
        # Set on a plain-HTTP port of a TLS door: the CA's challenge requests are answered
        # here, whatever their Host, and never reach a site (nor its redirect to HTTPS).
        self.challenges: Challenges | None = None
        self._server: asyncio.Server | None = None
        self.leaving = False  # see ``stop_accepting``

    # routing table -----------------------------------------------------------------------
    def add(self, site: Site, domains: tuple[str, ...]) -> None:
        if domains:
            for domain in domains:
                self.domains[domain.lower()] = site
        else:
            self.default = site

    def remove(self, site: Site) -> None:
        if self.default is site:
            self.default = None
        self.domains = {d: s for d, s in self.domains.items() if s is not site}

    @property
    def empty(self) -> bool:
        return self.default is None and not self.domains

    def route(self, head: Head) -> Site | None:
        if not self.domains:
            return self.default  # a port of one environment's own
        host = (head.get(b"host") or b"").decode("latin-1").lower()
        if host.startswith("["):
            host = host[: host.find("]") + 1]
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return self.domains.get(host.rstrip("."), self.default)

    # serving -----------------------------------------------------------------------------
    def bind(self) -> socket.socket:
        """Bind now, so "address in use" is an error the caller sees, not a log line."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.listen(1024)
        sock.set_inheritable(False)
        self.port = sock.getsockname()[1]
        return sock

    async def start(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientProtocol(self), sock=sock, ssl=self.ssl_context
        )

    def take_over(self) -> socket.socket | None:
        """The listening socket, shared (SO_REUSEPORT) with front-door workers taking this
        address over, so connections queue on without a gap; this listener stops accepting
        (its open connections go on until it closes)."""
        if self._server is None or not self._server.sockets:
            return None
        sock = socket.socket(fileno=os.dup(self._server.sockets[0].fileno()))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.stop_accepting()
        return sock

    def close_idle(self, waited: float) -> None:
        """Close the connections that waited ``waited`` s for a request with none begun (a
        front-door worker leaving: those busy finish first)."""
        for writer in list(self.connections):
            protocol = writer.transport.get_protocol()
            if isinstance(protocol, ClientProtocol) and protocol.idle_for() > waited:
                writer.transport.close()

    def stop_accepting(self) -> None:
        """Take no new connections; each open one closes after its next answer, which says
        "connection: close" (those idle are for the caller to close: ``close_idle``)."""
        self.leaving = True
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self.connections):
            writer.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def stats(self) -> dict[str, int]:
        return {**self.log.counts, "connections": self.open}

    def admit(self, client: str, writer: asyncio.StreamWriter) -> bool:
        """Count a new connection in, or refuse it (counted) when a cap is reached."""
        limits = self.limits
        refused = ""
        if self.budget.open >= self.budget.limit:
            refused = "server_connections"
        elif self.open >= limits.max_connections:
            refused = "max_connections"
        elif self.per_client[client] >= limits.max_connections_per_client:
            refused = "max_connections_per_client"
        if refused:
            self.log.trip(refused, f"refused a connection from {client}")
            return False
        self.budget.open += 1
        self.open += 1
        self.per_client[client] += 1
        self.connections.add(writer)
        return True

    def leave(self, client: str, writer: asyncio.StreamWriter) -> None:
        self.connections.discard(writer)
        self.budget.open -= 1
        self.open -= 1
        self.per_client[client] -= 1
        if not self.per_client[client]:
            del self.per_client[client]
