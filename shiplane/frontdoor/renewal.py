"""Keeping ACME certificates fresh while the front door serves.

The ``Renewer`` owns the host names of one listener that get certificates over ACME. At start it
installs what the store already has (a restart does not order anew), then an asyncio task checks
every ``interval`` seconds and renews a certificate whose remaining time fell inside the policy's
window. The blocking ACME order runs in a worker thread; the new pair is written to the store
and only then swapped into the ``SniContext``, so a failed renewal leaves the old certificate
serving and is retried with a backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from shiplane.errors import CertificateError
from shiplane.frontdoor.acme_client import AcmeClient
from shiplane.frontdoor.tls import CertificateInfo, CertificateStore, SniContext, check_host

log = logging.getLogger("shiplane.frontdoor.tls")


@dataclass(frozen=True, slots=True)
class RenewPolicy:
    """Renew when less than ``days`` or ``fraction`` of the lifetime remains, whichever is
    sooner: 30 days of a 90-day certificate, and a third of a short-lived one (a 6-day
    certificate renews with 2 days left, not every day)."""

    days: float = 30.0
    fraction: float = 1 / 3

    def window(self, info: CertificateInfo) -> dt.timedelta:
        return min(dt.timedelta(days=self.days), info.lifetime * self.fraction)

    def due(self, info: CertificateInfo | None, now: dt.datetime | None = None) -> bool:
        return info is None or info.remaining(now) <= self.window(info)


@dataclass(frozen=True, slots=True)
class HostStatus:
    """What ``Renewer.status`` reports per host (for /_deploy/status and logs)."""

    host: str
    serving: CertificateInfo | None
    obtained: int  # certificates obtained since the renewer started (first ones too)
    last_error: str | None  # the last failure, cleared by a success
    retry_at: float | None  # time.monotonic() of the next attempt after a failure


class Renewer:
    def __init__(
        self,
        client: AcmeClient,
        store: CertificateStore,
        sni: SniContext,
        hosts: Sequence[str],
        *,
        policy: RenewPolicy | None = None,
        interval: float = 3600.0,
        retry: float = 60.0,
    ) -> None:
        self.client = client
        self.store = store
        self.sni = sni
        self.hosts = [check_host(host) for host in hosts]
        self.policy = policy or RenewPolicy()
        self.interval = interval
        self.retry = retry
        self._obtained = dict.fromkeys(self.hosts, 0)
        self._errors: dict[str, str] = {}
        self._failures = dict.fromkeys(self.hosts, 0)
        self._retry_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._locks = {host: asyncio.Lock() for host in self.hosts}

    def load(self) -> list[str]:
        """Serve what the store holds for the hosts; returns the hosts still without one
        (call before listening, then ``start``, which obtains them)."""
        missing = []
        for host in self.hosts:
            try:
                self.sni.install_from(self.store, host)
            except CertificateError:
                missing.append(host)
        return missing

    def start(self) -> None:
        """Check now and then every ``interval`` seconds, on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tls-renewer")

    async def close(self) -> None:
        """Stop checking. An order already sent to the CA finishes in its thread (the acme
        library cannot be interrupted) and its certificate is stored, not installed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check(self) -> dict[str, CertificateInfo | CertificateError]:
        """Renew every host that is due and not waiting out a retry; one result per attempt."""
        results: dict[str, CertificateInfo | CertificateError] = {}
        now = time.monotonic()
        for host in self.hosts:
            if self._retry_at.get(host, 0.0) > now or not self.policy.due(self.sni.served(host)):
                continue
            try:
                results[host] = await self.renew(host)
            except CertificateError as exc:
                results[host] = exc
        return results

    async def renew(self, host: str) -> CertificateInfo:
        """Obtain a new certificate for ``host`` now and serve it from the next handshake on."""
        name = check_host(host)
        if name not in self._locks:
            raise CertificateError(
                f"{name} is not one of this listener's ACME hosts ({', '.join(self.hosts)})",
                step="acme",
                next_action="add it to the environment's domains",
            )
        async with self._locks[name]:
            try:
                info = await asyncio.to_thread(self._obtain_and_store, name)
                self.sni.install_from(self.store, name)
            except CertificateError as exc:
                self._failed(name, exc)
                raise
        self._obtained[name] += 1
        self._failures[name] = 0
        self._errors.pop(name, None)
        self._retry_at.pop(name, None)
        log.info(
            "certificate for %s renewed: serial %x until %s", name, info.serial, info.not_after
        )
        return info

    def status(self) -> list[HostStatus]:
        return [
            HostStatus(
                host=host,
                serving=self.sni.served(host),
                obtained=self._obtained[host],
                last_error=self._errors.get(host),
                retry_at=self._retry_at.get(host),
            )
            for host in self.hosts
        ]

    def _obtain_and_store(self, host: str) -> CertificateInfo:
        issued = self.client.obtain([host])
        try:
            return self.store.save(host, issued.chain_pem, issued.key_pem)
        except OSError as exc:
            raise CertificateError(
                f"cannot store the new certificate for {host} in {self.store.root}: {exc}",
                step="tls",
                next_action=f"check the permissions and free space of {self.store.root}",
            ) from exc

    def _failed(self, host: str, exc: CertificateError) -> None:
        # Back off 1, 2, 4 ... times ``retry``, never longer than ``interval``: a CA's rate
        # limit must not be hammered, and a fixed DNS record must not wait a day.
        self._failures[host] += 1
        delay = min(self.retry * 2 ** (self._failures[host] - 1), self.interval)
        self._retry_at[host] = time.monotonic() + delay
        self._errors[host] = exc.message
        log.warning("certificate for %s not renewed (retry in %.0f s): %s", host, delay, exc)

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                # A bug in one check must not end renewal for good: the certificates would
                # expire months later with nothing said since.
                log.exception("certificate check failed")
            await asyncio.sleep(self._next_wakeup())

    def _next_wakeup(self) -> float:
        now = time.monotonic()
        soonest = min((at - now for at in self._retry_at.values()), default=self.interval)
        return max(0.0, min(self.interval, soonest))
