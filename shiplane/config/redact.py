"""Secret redaction: every text that leaves shiplane (JSON, logs, errors) passes through here."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?=@)")
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE)", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


class Redactor:
    """Replaces known secret values (and passwords in URLs) with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Very short values would mask ordinary words; env files rarely hold such secrets.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted(
            {*self._secrets, *(s for s in secrets if len(s) >= 4)}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
