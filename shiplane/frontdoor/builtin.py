"""The built-in front door of one environment: blue/green switch, drain, hold, maintenance.

The active upstream is one attribute, read once per request on the event loop, so a switch is
atomic: every request goes wholly to the old or wholly to the new instance. In-flight requests
(open WebSockets included) are counted per instance; draining waits for an instance's count to
reach zero, and when the drain times out its WebSockets are closed (a TCP close: the door does
not speak the WebSocket protocol, so it sends no close frame). A hold parks new requests before
they pick an upstream, so on release they go to whatever was switched in meanwhile
(kamal-proxy's pause); past the bound they get 503 with Retry-After and are counted.

The door does not own a socket: a ``Listener`` routes requests to it by Host (several doors may
share one listener). Every door has a listener of its own on its ``port`` (what the deploy's
checks and the local clients use); a door with ``domains`` and a public ``listen`` port also joins
the listener shared by host name there. ``listen(sock)`` serves a door on a socket alone.

A door with ``tls`` (``https.DoorTls``) serves that shared port over HTTPS and also joins the
plain-HTTP listener on ``tls.http_port``, where it redirects to HTTPS (308) when asked; its
HTTPS answers carry HSTS when configured, the door's own answers (refusals, the maintenance
page, /_deploy/*) too. Its own port stays plain HTTP on loopback.

An upstream with ``static`` mounts (``static.StaticFiles``: the release's ``[app] static``)
has its files answered here, from the release the upstream belongs to, so they switch with it;
a hold does not delay them (files need no schema), maintenance does. The fast path only checks
the mounts' prefixes and leaves those requests to ``handle``.

Maintenance answers every request with a 503 page but /_deploy/health and /_deploy/version;
a request carrying the bypass (``shiplane.state.maintenance``: the deploy's own smoke checks)
is relayed without it. Every answer the door writes itself goes to the access log with the
upstream time "-".
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import time
from collections import Counter, defaultdict
from typing import Any

from shiplane.frontdoor.accesslog import AccessLog
from shiplane.frontdoor.base import DeployHook, FrontDoor, FrontDoorStats, Upstream
from shiplane.frontdoor.exchange import Exchange, Outcome, request_bytes
from shiplane.frontdoor.fastpath import FastClient
from shiplane.frontdoor.https import DoorTls
from shiplane.frontdoor.listener import Connection, Listener
from shiplane.frontdoor.pool import Pool
from shiplane.frontdoor.replies import MAINTENANCE_BYPASS as BYPASS
from shiplane.frontdoor.replies import MAINTENANCE_PAGE, json_reply, reply, retry_after
from shiplane.frontdoor.settings import DoorSettings, LimitLog, TrustedProxies
from shiplane.frontdoor.wire import Head, HttpError

# What maintenance leaves answered: a load balancer's probe and the deployed sha stay true.
PUBLIC_ENDPOINTS = frozenset({b"/_deploy/health", b"/_deploy/version"})
# Instances whose answer counts a door keeps (``answered``).
KEPT_COUNTS = 8


class BuiltinFrontDoor(FrontDoor):
    def __init__(
        self,
        env: str,
        port: int,
        deploy_hook: DeployHook,
        hold_timeout: float | None = None,
        settings: DoorSettings | None = None,
        tls: DoorTls | None = None,
    ) -> None:
        self.env = env
        self.tls = tls
        self.name = env
        self.settings = settings or DoorSettings(port=port)
        self.port = port
        self.limits = self.settings.limits
        self.hold_timeout = hold_timeout if hold_timeout is not None else self.limits.hold_timeout
        self.trusted = TrustedProxies(self.settings.trusted_proxies)
        self.access = AccessLog(self.settings.access_log) if self.settings.access_log else None
        self.log = LimitLog(f"front door {env}")
        self.pool = Pool()
        self.listeners: list[Listener] = []
        self._own_listener = False
        self._deploy_hook = deploy_hook
        self._active: Upstream | None = None
        self._addresses: dict[str, tuple[str, int]] = {}
        self._inflight: Counter[str] = Counter()
        self._tunnels: defaultdict[str, set[asyncio.StreamWriter]] = defaultdict(set)
        self._requests = 0
        # instance id -> [answers relayed or failed on its behalf, of them 5xx]: the watch
        # after a switch compares the new instance's error rate with the old one's.
        self._answered: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._switched_at: float | None = None
        self._held = False
        self._maintenance = False
        self._bypass: bytes | None = None
        self._released = asyncio.Event()
        self._released.set()
        self._waiting = 0
        self._starting: asyncio.Task[None] | None = None

    def listen(self, sock: socket.socket) -> None:
        """Serve on an already bound and listening socket, on a listener of the door's own."""
        host, port = sock.getsockname()[:2]
        listener = Listener(host, port, limits=self.limits)
        listener.add(self, ())
        self.attach(listener)
        self._own_listener = True
        self._starting = asyncio.create_task(listener.start(sock))

    def attach(self, listener: Listener, own: bool = True) -> None:
        """Take requests from ``listener`` (the caller adds the door to its routing table)."""
        self.listeners.append(listener)
        if own:
            self.port = listener.port

    # FrontDoor ---------------------------------------------------------------------------
    def switch(self, upstream: Upstream | None) -> Upstream | None:
        previous, self._active = self._active, upstream
        if upstream is not None:
            self._addresses[upstream.instance_id] = (upstream.host, upstream.port)
        # The counts of instances long gone go (the oldest first); the last few stay for the
        # watch's baseline.
        for stale in list(self._answered)[:-KEPT_COUNTS]:
            del self._answered[stale]
        self._switched_at = time.time()
        return previous

    def active(self) -> Upstream | None:
        return self._active

    async def confirmed(self) -> None:
        """Return once every change so far serves: at once here, where the change is one
        attribute of this process (``workers.WorkerFrontDoor`` waits for its workers)."""

    async def drain(self, instance_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        drained = True
        while self._inflight[instance_id] > 0:
            if time.monotonic() >= deadline:
                drained = False
                break
            await asyncio.sleep(0.02)
        if not drained:
            # Open WebSockets are closed at the drain's end: the instance is about to stop.
            for writer in list(self._tunnels.get(instance_id, ())):
                writer.transport.abort()
        active = self._active
        if active is None or active.instance_id != instance_id:
            address = self._addresses.pop(instance_id, None)
            if address is not None:
                self.pool.discard(address)
        return drained

    def hold(self, timeout: float | None = None) -> None:
        if timeout is not None:
            self.hold_timeout = timeout
        self._held = True
        self._released.clear()

    def release(self) -> None:
        self._held = False
        self._released.set()

    def maintenance(self, on: bool, bypass: str | None = None) -> None:
        """Answer every request (but /_deploy/health and /_deploy/version) with 503,
        Retry-After and a small page; a request carrying ``bypass`` in the bypass header
        (the deploy's own checks) is relayed as usual, without that header."""
        self._maintenance = on
        self._bypass = bypass.encode() if on and bypass else None

    def maintenance_mode(self) -> tuple[bool, str | None]:
        """(on, bypass): what a door replacing this one takes over."""
        return self._maintenance, self._bypass.decode() if self._bypass else None

    def stats(self) -> FrontDoorStats:
        tripped = Counter(self.log.counts)
        for listener in self.listeners:
            tripped.update(listener.log.counts)
        return FrontDoorStats(
            port=self.port,
            requests=self._requests,
            inflight={k: v for k, v in self._inflight.items() if v},
            switched_at=self._switched_at,
            held=self._held,
            waiting=self._waiting,
            held_timeouts=self.log.counts["held_timeout"],
            tripped=dict(tripped),
            websockets=sum(len(t) for t in self._tunnels.values()),
            connections=sum(listener.open for listener in self.listeners),
            maintenance=self._maintenance,
        )

    async def close(self) -> None:
        self.release()  # nobody waits out the bound for a door that is going away
        if self._starting is not None:
            await self._starting
        for listener in self.listeners:
            listener.remove(self)
            if self._own_listener:
                await listener.close()
        if self.tls is not None:
            routed = {d for listener in self.listeners for d in listener.domains}
            await self.tls.close(routed)
        for writers in self._tunnels.values():
            for writer in writers:
                writer.transport.abort()
        self.pool.close()
        if self.access is not None:
            self.access.close()

    # TunnelRegistry ----------------------------------------------------------------------
    def opened(self, instance_id: str, closer: asyncio.StreamWriter) -> None:
        self._tunnels[instance_id].add(closer)

    def closed(self, instance_id: str, closer: asyncio.StreamWriter) -> None:
        self._tunnels[instance_id].discard(closer)

    # Site (called by the listener for each request routed here) ---------------------------
    async def handle(self, conn: Connection, head: Head) -> bool:
        # A condition answered here before the relay must also be one that stops fast_route.
        keep = head.keep_alive and not head.has_body and not head.upgrade
        tls = self.tls
        if (
            tls is not None
            and conn.scheme == b"http"
            and conn.listener.port == tls.settings.http_port
        ):
            redirect = tls.redirect(head)
            if redirect is not None:
                conn.writer.write(redirect)
                return keep
        # The door's own answers on HTTPS carry HSTS too, not only the relayed ones.
        hsts = self.own_headers(conn.scheme)
        if self._maintenance and self._in_maintenance(head):
            extra = (*retry_after(self.limits.retry_after), *hsts)
            page = reply(503, MAINTENANCE_PAGE, b"text/html; charset=utf-8", keep, extra)
            return self._answer_own(conn, head, page, 503, keep)
        if head.target.startswith(b"/_deploy/"):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in head.headers}
            path = head.target.decode("latin-1").split("?")[0]
            status, payload = await self._deploy_hook(path, conn.peer, headers, self._active)
            return self._answer_own(
                conn, head, json_reply(status, payload, keep, hsts), status, keep
            )
        upstream = self._active
        static = upstream.static if upstream is not None else None
        if static is not None and static.claims(head.target):
            # Files need no schema: served from the release that serves, held or not.
            served = await static.answer(conn.writer, head, hsts)
            if served is not None:
                self.log_own(conn.peer, head, served.status, served.sent)
                return served.keep_alive
        if self._held and not await self._wait_for_release():
            self.log.trip("held_timeout", f"held over {self.hold_timeout:g} s")
            error = {
                "error": f"{self.env} was held over {self.hold_timeout:g} s (a deploy is migrating)"
            }
            extra = (*retry_after(self.limits.retry_after), *hsts)
            return self._answer_own(conn, head, json_reply(503, error, keep, extra), 503, keep)
        upstream = self._active
        if upstream is None:
            error = {"error": f"no release is serving {self.env} yet"}
            return self._answer_own(conn, head, json_reply(503, error, keep, hsts), 503, keep)
        self._requests += 1
        instance = upstream.instance_id
        self._inflight[instance] += 1
        trusted = conn.peer in self.trusted
        exchange = Exchange(
            conn,
            head,
            (upstream.host, upstream.port),
            self.pool,
            self.limits,
            self._forwarded(conn, head, trusted),
            trusted,
            hsts,
        )
        try:
            outcome = await exchange.run(instance, self)
        except HttpError as exc:
            self.log.trip(exc.kind, f"{conn.peer}: {exc.reason}")
            self._count(instance, exchange.outcome.status or exc.status)
            if not exchange.outcome.started:
                answer = json_reply(exc.status, {"error": exc.reason}, False, hsts)
                return self._answer_own(conn, head, answer, exc.status, False)
            self._log_access(conn, head, exchange)
            return False
        finally:
            self._inflight[instance] -= 1
        if outcome.failure:
            self.log.trip(outcome.failure, f"{upstream.host}:{upstream.port} for {conn.peer}")
        self._count(instance, outcome.status)
        self._log_access(conn, head, exchange)
        return outcome.keep_alive

    def _count(self, instance_id: str, status: int) -> None:
        if status <= 0:  # the client left before any answer: nothing was said either way
            return
        counts = self._answered[instance_id]
        counts[0] += 1
        if status >= 500:
            counts[1] += 1

    def answered(self, instance_id: str) -> tuple[int, int]:
        """(answers, of them 5xx) relayed for ``instance_id`` since the door started; an
        upstream that failed before answering counts as the 502/504 the client got."""
        counts = self._answered.get(instance_id)
        return (counts[0], counts[1]) if counts else (0, 0)

    def own_headers(self, scheme: bytes) -> tuple[tuple[bytes, bytes], ...]:
        """Headers every answer over ``scheme`` carries: HSTS on HTTPS when configured."""
        tls = self.tls
        return tls.hsts if tls is not None and scheme == b"https" else ()

    def log_own(self, peer: str, head: Head | None, status: int, sent: int) -> None:
        """An access-log line for an answer the door (or its listener) wrote itself."""
        if self.access is not None:
            self.access.refusal(peer, head, status, sent)

    def _in_maintenance(self, head: Head) -> bool:
        """Whether the maintenance page answers ``head``: health and version stay truthful
        (what runs behind the page), and the bypass passes (its header removed)."""
        path = head.target.split(b"?", 1)[0]
        if path in PUBLIC_ENDPOINTS:
            return False
        supplied = head.get(BYPASS) if self._bypass is not None else None
        if supplied is None or self._bypass is None:
            return True
        if not hmac.compare_digest(supplied, self._bypass):
            return True
        head.headers = [(k, v) for k, v in head.headers if k != BYPASS]
        return False

    def _answer_own(
        self, conn: Connection, head: Head, answer: bytes, status: int, keep: bool
    ) -> bool:
        """Write an answer of the door's own (no upstream) and log it with upstream time "-"."""
        conn.writer.write(answer)
        self.log_own(conn.peer, head, status, len(answer))
        return keep

    # Fast path (fastpath.py): ``handle``'s relay, for a request nothing else needs ---------
    def fast_route(self, conn: FastClient, head: Head) -> tuple[Upstream, bytes] | None:
        """The upstream and the request for it, counted in flight; None when ``handle`` must
        answer: every condition under which ``handle`` answers by itself is listed here."""
        upstream = self._active
        if (
            upstream is None
            or self.tls is not None
            or self._maintenance
            or self._held
            or head.target.startswith(b"/_deploy/")
            or (upstream.static is not None and upstream.static.claims(head.target))
        ):
            return None
        self._requests += 1
        self._inflight[upstream.instance_id] += 1
        trusted = conn.peer in self.trusted
        return upstream, request_bytes(head, self._forwarded(conn, head, trusted), trusted)

    def fast_done(self, conn: FastClient, head: Head, upstream: Upstream, outcome: Outcome) -> None:
        self._inflight[upstream.instance_id] -= 1
        if outcome.failure:
            self.log.trip(outcome.failure, f"{upstream.host}:{upstream.port} for {conn.peer}")
        self._count(upstream.instance_id, outcome.status)
        if self.access is not None:
            self.access.write(conn.peer, head, outcome)

    def _forwarded(self, conn: Connection | FastClient, head: Head, trusted: bool) -> bytes:
        """The X-Forwarded-* lines the upstream gets (a trusted proxy's are extended)."""
        peer = conn.peer.encode()
        proto = conn.scheme
        host = head.get(b"host") or b"%s:%d" % (self.settings.host.encode(), self.port)
        if trusted:
            earlier = head.get(b"x-forwarded-for")
            peer = earlier + b", " + peer if earlier else peer
            proto = head.get(b"x-forwarded-proto") or proto
            host = head.get(b"x-forwarded-host") or host
        return b"x-forwarded-for: %s\r\nx-forwarded-proto: %s\r\nx-forwarded-host: %s\r\n" % (
            peer,
            proto,
            host,
        )

    def _log_access(self, conn: Connection, head: Head, exchange: Exchange) -> None:
        if self.access is not None:
            self.access.write(conn.peer, head, exchange.outcome)

    async def _wait_for_release(self) -> bool:
        self._waiting += 1
        try:
            async with asyncio.timeout(self.hold_timeout):
                await self._released.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1

    def deploy_hook(self) -> DeployHook:
        return self._deploy_hook

    def describe(self) -> dict[str, Any]:
        return {"env": self.env, "port": self.port, "domains": list(self.settings.domains)}

    def certificates(self) -> list[dict[str, Any]] | None:
        """Each HTTPS host's certificate (expiry, renewals); None without tls."""
        return self.tls.status() if self.tls is not None else None
