"""Certificates from an ACME CA (RFC 8555), with HTTP-01 challenges answered by the front door.

The CA proves that we control a host name by fetching
``http://<host>/.well-known/acme-challenge/<token>`` on port 80 and expecting the key
authorization. The front door's HTTP listener already owns that port, so instead of a separate
server (certbot's standalone mode) it asks the ``ChallengeResponder`` first, before routing:

    body = responder.answer(path)           # bytes: answer 200 text/plain with it
    if body is None and responder.owns(path):
        ...                                 # 404: a challenge path never reaches the app

``AcmeClient.obtain`` is blocking (the ``acme`` library uses requests); the renewer runs it in a
worker thread, and the responder's map is shared with the event loop by plain dict operations.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests
from acme import challenges, crypto_util, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import errors as jose_errors
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from shiplane.errors import CertificateError
from shiplane.frontdoor.tls import check_host, new_private_key, private_dir, write_private

CHALLENGE_PREFIX = "/" + challenges.HTTP01.URI_ROOT_PATH + "/"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class ChallengeResponder:
    """Token -> key authorization for the HTTP-01 challenges in progress."""

    def __init__(self) -> None:
        self._answers: dict[str, bytes] = {}

    def add(self, token: str, key_authorization: str) -> None:
        self._answers[token] = key_authorization.encode("ascii")

    def remove(self, token: str) -> None:
        self._answers.pop(token, None)

    @staticmethod
    def owns(path: bytes | str) -> bool:
        """Whether the request path is a challenge path (answered here, never routed on)."""
        text = path.decode("latin-1") if isinstance(path, bytes) else path
        return text.startswith(CHALLENGE_PREFIX)

    def answer(self, path: bytes | str) -> bytes | None:
        """The body for a challenge request (serve it as 200 text/plain), or None.

        A dict lookup, so the listener may call it on the event loop; a query string is ignored
        because the CA sends none and a stray one must not hide the token."""
        text = path.decode("latin-1") if isinstance(path, bytes) else path
        if not text.startswith(CHALLENGE_PREFIX):
            return None
        token = text[len(CHALLENGE_PREFIX) :].partition("?")[0]
        return self._answers.get(token)

    def pending(self) -> int:
        return len(self._answers)


@dataclass(frozen=True, slots=True)
class Issued:
    chain_pem: bytes  # the leaf and its intermediates, as the CA sent them
    key_pem: bytes


def load_account_key(path: Path) -> JWKEC:
    """The ACME account key at ``path``, made (0600, in a 0700 directory) when missing."""
    private_dir(path.parent)
    if not path.exists():
        write_private(path, new_private_key())
    os.chmod(path, 0o600)  # whoever signs with this key owns the account and its certificates
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CertificateError(
            f"cannot read the ACME account key {path}: {exc}",
            step="acme",
            next_action=f"remove {path} to register a new account, or restore the key",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(
            f"the ACME account key {path} is not an EC key",
            step="acme",
            next_action=f"remove {path} to register a new account",
        )
    return JWKEC(key=key)


class AcmeClient:
    """Obtains certificates from one ACME directory with one account.

    ``ca_bundle`` verifies the CA's own HTTPS (a test CA such as pebble, or a private one);
    None uses the system's trust store. Calls are serialized: one order at a time."""

    def __init__(
        self,
        directory: str,
        account_key: Path,
        responder: ChallengeResponder,
        *,
        email: str | None = None,
        ca_bundle: Path | None = None,
        timeout: float = 90.0,
    ) -> None:
        self.directory = directory
        self.account_key = account_key
        self.responder = responder
        self.email = email
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self._client: acme_client.ClientV2 | None = None
        self._lock = threading.Lock()

    def obtain(self, hosts: Sequence[str]) -> Issued:
        """A new key and a certificate for ``hosts`` (blocking; seconds to a minute)."""
        names = [check_host(host) for host in hosts]
        with self._lock:
            try:
                return self._order(names)
            except CertificateError:
                raise
            except (acme_errors.Error, jose_errors.Error, requests.RequestException) as exc:
                # A broken session (expired account, CA restarted) must not stick: reconnect
                # on the next call.
                self._client = None
                raise CertificateError(
                    f"the ACME server at {self.directory} did not issue a certificate for"
                    f" {', '.join(names)}: {describe_acme_error(exc)}",
                    step="acme",
                    next_action="check that the names resolve to this host and that port 80"
                    " reaches the front door; the current certificate keeps serving",
                ) from exc

    def _connect(self) -> acme_client.ClientV2:
        if self._client is not None:
            return self._client
        key = load_account_key(self.account_key)
        net = acme_client.ClientNetwork(
            key, alg=ES256, user_agent="shiplane", timeout=int(self.timeout)
        )
        if self.ca_bundle is not None:
            # requests takes a CA bundle path where the acme library declares a bool; it
            # passes ``verify_ssl`` to requests unchanged.
            net.verify_ssl = str(self.ca_bundle)  # type: ignore[assignment]
        client = acme_client.ClientV2(acme_client.ClientV2.get_directory(self.directory, net), net)
        registration = messages.NewRegistration.from_data(
            email=self.email, terms_of_service_agreed=True
        )
        try:
            client.new_account(registration)
        except acme_errors.ConflictError as exc:
            # The key already has an account (a restart): sign with its URL from now on.
            net.account = messages.RegistrationResource(
                uri=exc.location, body=messages.Registration()
            )
        self._client = client
        return client

    def _order(self, names: list[str]) -> Issued:
        client = self._connect()
        key_pem = new_private_key()
        order = client.new_order(crypto_util.make_csr(key_pem, names))
        tokens: list[str] = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # the CA remembers a recent validation of this name
                challenge = http01(authz)
                response, validation = challenge.response_and_validation(client.net.key)
                token = challenge.chall.encode("token")
                self.responder.add(token, validation)
                tokens.append(token)
                client.answer_challenge(challenge, response)
            deadline = dt.datetime.now() + dt.timedelta(seconds=self.timeout)
            done = client.poll_and_finalize(order, deadline)
        finally:
            for token in tokens:
                self.responder.remove(token)
        return Issued(chain_pem=done.fullchain_pem.encode("ascii"), key_pem=key_pem)


def http01(authz: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challenge in authz.body.challenges:
        if isinstance(challenge.chall, challenges.HTTP01):
            return challenge
    raise CertificateError(
        f"the ACME server offers no HTTP-01 challenge for {authz.body.identifier.value}",
        step="acme",
        next_action="use a CA that validates over HTTP-01, or give tls.cert and tls.key",
    )


def describe_acme_error(exc: Exception) -> str:
    """One line from the acme library's errors (a failed validation says why per name)."""
    if isinstance(exc, acme_errors.ValidationError):
        reasons = []
        for authz in exc.failed_authzrs:
            for challenge in authz.body.challenges:
                if challenge.error is not None:
                    reasons.append(f"{authz.body.identifier.value}: {challenge.error}")
        return "; ".join(reasons) or "validation failed"
    if isinstance(exc, acme_errors.TimeoutError):
        return "the order was not ready in time"
    return str(exc) or type(exc).__name__
