"""One door's HTTPS: its certificates served on the shared listener, and what plain HTTP does.

The server gives every TLS listener (one per shared HTTPS port) one ``SniContext``; each door
with ``tls`` puts its own domains' certificates into it. With ACME a ``Renewer`` per door loads
what ``<home>/certs`` holds, then obtains what is missing and renews what is due in the
background (the door's CA, account and renewal window are its own: two environments may use
two CAs); with the user's own files they are installed once, at the door's start. The
renewer is closed with the door.

On the door's plain-HTTP port (``tls.http_port``) the listener answers ACME challenges before
any routing (``Listener.challenges``); this module then decides the redirect (308 to the same
path over HTTPS) and the HSTS header of HTTPS answers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from shiplane.errors import CertificateError
from shiplane.frontdoor.acme_client import AcmeClient, ChallengeResponder
from shiplane.frontdoor.redirect import hsts_value, https_location, redirect_head
from shiplane.frontdoor.renewal import Renewer, RenewPolicy
from shiplane.frontdoor.settings import TlsSettings
from shiplane.frontdoor.tls import CertificateStore, SniContext, private_dir
from shiplane.frontdoor.wire import Head

Header = tuple[bytes, bytes]


class DoorTls:
    def __init__(
        self,
        settings: TlsSettings,
        domains: tuple[str, ...],
        https_port: int,
        sni: SniContext,
        store: CertificateStore,
        responder: ChallengeResponder,
        accounts: Path,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.domains = domains
        self.https_port = https_port
        self.sni = sni
        self.store = store
        self.responder = responder
        self.renewer: Renewer | None = None
        self.hsts: tuple[Header, ...] = (
            ((b"strict-transport-security", hsts_value(settings.hsts)),)
            if settings.hsts is not None
            else ()
        )

    def start(self) -> None:
        """Serve the certificates there are now; with ACME, obtain the missing ones (and renew)
        in the background, on the running loop. CertificateError when own files do not load
        (nothing of this door is installed then)."""
        settings = self.settings
        if not settings.acme:
            assert settings.cert is not None and settings.key is not None
            for host in self.domains:
                self.sni.install(host, Path(settings.cert), Path(settings.key))
            return
        client = AcmeClient(
            settings.directory,
            account_key(self.accounts, settings.directory),
            self.responder,
            email=settings.email,
            ca_bundle=Path(settings.ca_bundle) if settings.ca_bundle else None,
        )
        policy = RenewPolicy(days=settings.renew_before_days, fraction=settings.renew_fraction)
        self.renewer = Renewer(client, self.store, self.sni, self.domains, policy=policy)
        self.renewer.load()  # a restart serves what is stored at once, without ordering
        self.renewer.start()

    async def close(self, still_routed: set[str]) -> None:
        """Stop renewing; stop serving this door's names unless another door took them over
        (a door replaced by one with new settings keeps the names it shares)."""
        if self.renewer is not None:
            await self.renewer.close()
        for host in self.domains:
            if host not in still_routed:
                self.sni.remove(host)

    async def renew_now(self) -> list[dict[str, Any]]:
        """Obtain new certificates for every name now (an operator's forced renewal); the old
        ones serve until each new one is swapped in. CertificateError without ACME or when
        the CA refuses (the old certificate keeps serving)."""
        if self.renewer is None:
            raise CertificateError(
                "this environment serves its own certificate files: nothing to renew",
                step="tls",
                next_action="replace tls.cert and tls.key and deploy, or use acme = true",
            )
        for host in self.domains:
            await self.renewer.renew(host)
        return self.status()

    def redirect(self, head: Head) -> bytes | None:
        """The 308 to HTTPS for a plain-HTTP request, or None (serve it as it is)."""
        if not self.settings.redirect_http:
            return None
        location = https_location(
            head.get(b"host"), head.target, self.https_port, known=self.domains
        )
        if location is None:
            return None
        keep = head.keep_alive and not head.has_body and not head.upgrade
        return redirect_head(location, close=not keep)

    def status(self) -> list[dict[str, Any]]:
        """Per host: the certificate served (expiry) and, with ACME, the renewer's record."""
        if self.renewer is not None:
            return [
                {
                    "host": item.host,
                    "not_after": item.serving.not_after.isoformat() if item.serving else None,
                    "serial": f"{item.serving.serial:x}" if item.serving else None,
                    "obtained": item.obtained,
                    "last_error": item.last_error,
                }
                for item in self.renewer.status()
            ]
        listed = []
        for host in self.domains:
            info = self.sni.served(host)
            listed.append(
                {
                    "host": host,
                    "not_after": info.not_after.isoformat() if info else None,
                    "serial": f"{info.serial:x}" if info else None,
                    "source": "files",
                }
            )
        return listed


def account_key(accounts: Path, directory: str) -> Path:
    """One ACME account per CA directory (0700 directories, key 0600)."""
    digest = hashlib.sha256(directory.encode()).hexdigest()[:16]
    return private_dir(private_dir(accounts) / digest) / "account.pem"
