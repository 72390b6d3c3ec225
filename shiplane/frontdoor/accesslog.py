"""The access log of one environment's front door: combined format plus the upstream's time,
in a file rotated by size (10 MiB, 5 kept) under the environment's logs directory."""

from __future__ import annotations

import io
import logging
import os
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path

from shiplane.frontdoor.exchange import Outcome
from shiplane.frontdoor.wire import Head

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


def _quoted(value: bytes | None) -> str:
    if not value:
        return "-"
    # Request bytes go into a text file: no quote or control byte may forge a field or a line.
    text = value.decode("latin-1")
    return "".join(c if c.isprintable() and c != '"' else f"\\x{ord(c):02x}" for c in text)


class PrivateRotatingFileHandler(RotatingFileHandler):
    """Client addresses and URLs are personal data: the file (and each rotation) is 0600."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class AccessLog:
    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.handler = PrivateRotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS)
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        # One logger per file, not propagated: access lines stay out of the server's log.
        self.logger = logging.getLogger(f"shiplane.frontdoor.access.{path}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self.handler)

    def write(self, peer: str, head: Head, outcome: Outcome) -> None:
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        request = b"%s %s HTTP/%s" % (head.method, head.target, head.version.encode())
        self.logger.info(
            '%s - - [%s] "%s" %d %d "%s" "%s" %.3f',
            peer,
            when,
            _quoted(request),
            outcome.status,
            outcome.sent,
            _quoted(head.get(b"referer")),
            _quoted(head.get(b"user-agent")),
            outcome.upstream_time,
        )

    def refusal(self, peer: str, head: Head | None, status: int, sent: int) -> None:
        """An answer of the door's own (a refusal, the maintenance page, /_deploy/*): no
        upstream was asked, so its time is "-"; a request whose head never parsed is "-"."""
        when = time.strftime("%d/%b/%Y:%H:%M:%S %z")
        request = "-"
        if head is not None and head.method:
            request = _quoted(b"%s %s HTTP/%s" % (head.method, head.target, head.version.encode()))
        self.logger.info(
            '%s - - [%s] "%s" %d %d "%s" "%s" -',
            peer,
            when,
            request,
            status,
            sent,
            _quoted(head.get(b"referer") if head is not None else None),
            _quoted(head.get(b"user-agent") if head is not None else None),
        )

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
