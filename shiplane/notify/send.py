"""Sending through apprise: URLs resolved from the env file, bounded timeouts, never a token
in what is shown or logged (a URL is named by its scheme and host only)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from string import Template
from urllib.parse import urlsplit

from shiplane.config.redact import Redactor
from shiplane.errors import ConfigError

# A receiver gets this long to connect and to answer: a slow one costs a warning, no more.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 4.0

# apprise logs whole URLs (tokens and all) at debug and warning level: none of it may reach
# the server's log; each send's outcome is logged here instead, redacted.
logging.getLogger("apprise").propagate = False


@dataclass(frozen=True)
class Delivery:
    url: str  # shown(): scheme://host, redacted
    ok: bool
    error: str | None = None
    config_error: bool = False  # the URL itself is wrong: trying again changes nothing

    @property
    def retry(self) -> bool:
        """Worth another try: not delivered, and not for a reason in the config."""
        return not self.ok and not self.config_error

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "ok": self.ok, "error": self.error}


def shown(template: str, redact: Redactor) -> str:
    """How ``template`` (as written in shiplane.toml, placeholders unresolved) is named."""
    try:
        parts = urlsplit(template)
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        return "(unparsable URL)"
    return redact(f"{parts.scheme}://{host}")


def resolve(template: str, secrets: Mapping[str, str], env: str, redact: Redactor) -> str:
    """``${NAME}`` in a notify URL comes from the env file, like database.url's."""
    resolved = Template(template).safe_substitute(secrets)
    if "${" in resolved:
        raise ConfigError(
            f"notify.urls: {shown(template, redact)} names a ${{VARIABLE}} that the env file"
            f" of {env} does not define",
            next_action=f"add it to environments.{env}.env_file",
        )
    return resolved


def send_one(template: str, url: str, title: str, body: str, redact: Redactor) -> Delivery:
    """Send one message to one resolved URL and say whether the receiver took it."""
    import apprise  # only a server that sends pays for importing it

    name = shown(template, redact)
    sender = apprise.Apprise()
    if not sender.add(url):
        return Delivery(
            name, False, "apprise does not understand this URL (check its scheme)", True
        )
    for plugin in sender:
        plugin.socket_connect_timeout = CONNECT_TIMEOUT
        plugin.socket_read_timeout = READ_TIMEOUT
    try:
        ok = bool(sender.notify(title=title, body=body))
    except Exception as exc:  # a plugin's own bug must not reach the operation
        return Delivery(name, False, redact(f"{type(exc).__name__}: {exc}"))
    if ok:
        return Delivery(name, True)
    return Delivery(name, False, "not delivered: refused, timed out or answered an error")


def send_all(
    templates: list[str],
    secrets: Mapping[str, str],
    env: str,
    title: str,
    body: str,
    redact: Redactor,
) -> list[Delivery]:
    """Send to every URL at once (a slow receiver does not hold up the others)."""
    resolved: list[tuple[str, str]] = []
    deliveries: dict[int, Delivery] = {}
    for index, template in enumerate(templates):
        try:
            resolved.append((template, resolve(template, secrets, env, redact)))
        except ConfigError as exc:
            deliveries[index] = Delivery(shown(template, redact), False, exc.message, True)
            resolved.append((template, ""))
    with ThreadPoolExecutor(max_workers=max(1, len(templates))) as pool:
        futures = {
            index: pool.submit(send_one, template, url, title, body, redact)
            for index, (template, url) in enumerate(resolved)
            if index not in deliveries
        }
        for index, future in futures.items():
            deliveries[index] = future.result()
    return [deliveries[index] for index in range(len(templates))]
