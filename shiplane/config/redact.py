"""Secret redaction: every text that leaves shiplane (JSON, logs, errors) passes through here.

A secret is masked as it is and in the forms it takes on its way out: JSON-escaped (a response
body, a stored report), \\uXXXX-escaped (JSON with ensure_ascii, either hex case), Python-escaped
(a repr), URL-encoded (a query string, a URL's password) and base64 (standard and URL-safe,
padded or not: a Basic auth header, a token). Passwords in URLs are masked whatever they are.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
# scheme://[user]:password@host — the password runs to the last "@" before the host's "/".
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^\s/]+)(?=@)")
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE)", re.IGNORECASE)
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-f]{4})")
_PERCENT = re.compile(r"%[0-9A-F]{2}")
# Very short values would mask ordinary words; env files rarely hold such secrets.
MIN_LENGTH = 4


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def mask_url_passwords(text: str) -> str:
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


def encoded_forms(secret: str) -> set[str]:
    """``secret`` and the forms it takes when a JSON encoder, a URL or base64 carries it."""
    json_escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    ascii_escaped = json.dumps(secret)[1:-1]
    url = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    raw = secret.encode()
    b64 = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    forms = {
        secret,
        json_escaped,
        ascii_escaped,
        _UNICODE_ESCAPE.sub(lambda m: "\\u" + m.group(1).upper(), ascii_escaped),
        json.dumps(json_escaped, ensure_ascii=False)[1:-1],  # JSON inside a JSON string
        json.dumps(ascii_escaped)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        repr(secret)[1:-1],
        *url,
        *(_PERCENT.sub(lambda m: m.group(0).lower(), u) for u in url),
        *b64,
        *(b.rstrip("=") for b in b64),
    }
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Redactor:
    """Replaces known secret values, in every form above, and passwords in URLs with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        forms = {f for s in secrets if len(s) >= MIN_LENGTH for f in encoded_forms(s)}
        # Longest first: a form that contains another is masked whole.
        self._secrets = sorted({*self._secrets, *forms}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_url_passwords(text)
