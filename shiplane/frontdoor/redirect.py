"""HTTP -> HTTPS: the redirect a plain-HTTP listener answers, and the HSTS header for HTTPS.

Pure functions of the request's Host and target, so the relay calls them before routing (after
the ACME ``ChallengeResponder``: a challenge must be answered over plain HTTP, never redirected).
"""

from __future__ import annotations

import re
from collections.abc import Collection

# A host name or an IPv4 address, optionally with a port; IPv6 literals in brackets. Anything
# else (spaces, CR/LF, '@', '/') could split the Location header or point it elsewhere.
HOST_HEADER_RE = re.compile(
    r"^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
# Visible ASCII without space: what a request target may hold once the parser accepted it.
TARGET_RE = re.compile(r"^[\x21-\x7e]*$")
HSTS_YEAR = 31_536_000


def https_location(
    host: bytes | str | None,
    target: bytes | str,
    https_port: int = 443,
    known: Collection[str] | None = None,
) -> str | None:
    """Where ``http://<host><target>`` lives over HTTPS; None when the Host header is missing,
    malformed or (with ``known``) not one of the listener's names: answer 400 or route on."""
    raw_host = host.decode("latin-1") if isinstance(host, bytes) else host
    path = target.decode("latin-1") if isinstance(target, bytes) else target
    if not raw_host or not TARGET_RE.match(path):
        return None
    match = HOST_HEADER_RE.match(raw_host.strip())
    if match is None:
        return None
    name = match.group("host").lower().rstrip(".")
    if known is not None and name not in known:
        return None
    if path.startswith(("http://", "https://")):  # absolute-form: keep only its path
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    elif not path.startswith("/"):  # "*" (OPTIONS) or garbage: the site's root
        path = "/"
    port = "" if https_port == 443 else f":{https_port}"
    return f"https://{name}{port}{path}"


def redirect_head(location: str, close: bool = False) -> bytes:
    """A complete 308 response (no body). 308, not 301: a POST stays a POST with its body."""
    lines = [
        b"HTTP/1.1 308 Permanent Redirect",
        b"Location: " + location.encode("ascii"),
        b"Content-Length: 0",
    ]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def hsts_value(max_age: int, include_subdomains: bool = False, preload: bool = False) -> bytes:
    """The Strict-Transport-Security value. Send it on HTTPS responses only: browsers ignore
    it over HTTP (RFC 6797 8.1), and ``max_age=0`` tells them to forget an earlier one."""
    if max_age < 0:
        raise ValueError("max_age must be 0 or more seconds")
    value = f"max-age={max_age}"
    if include_subdomains:
        value += "; includeSubDomains"
    if preload:
        value += "; preload"
    return value.encode("ascii")
