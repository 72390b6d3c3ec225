"""The server's notifier: sends in the background, so a slow or dead receiver never delays or
fails an operation; what goes wrong is a warning in the server log, redacted. A receiver that
failed is tried again after ``RETRY_AFTER`` (a webhook that restarts, a blip): a failed
rollback's message is worth a second try."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shiplane.config.loader import LoadedConfig, env_settings
from shiplane.config.redact import Redactor
from shiplane.notify.events import event_for
from shiplane.notify.message import Notice, build, notice_from_result
from shiplane.notify.send import Delivery, send_all

log = logging.getLogger("shiplane.notify")
RETRY_AFTER = (2.0, 10.0)  # seconds before the second and the third try of a failed receiver


class Notifier:
    def __init__(self, workers: int = 2) -> None:
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")
        self.closing = threading.Event()  # ends the waits between tries: a stopping server

    def close(self) -> None:
        self.closing.set()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def after_operation(self, command: str, loaded: LoadedConfig, result: dict[str, Any]) -> None:
        """Called with every operation's result; sends it if it is an event ``loaded`` asks
        for. Returns at once."""
        event = event_for(command, result)
        if event is None or not result.get("env"):
            return
        self.submit(loaded, notice_from_result(event, loaded.config.app.name, result))

    def submit(self, loaded: LoadedConfig, notice: Notice) -> None:
        self.submit_loading(lambda: loaded, notice)

    def submit_loading(self, load: Callable[[], LoadedConfig], notice: Notice) -> None:
        """Send ``notice`` with the config ``load()`` gives, read in the background too (the
        watch calls this from the server's event loop)."""
        self.executor.submit(self._send, load, notice)

    def _send(self, load: Callable[[], LoadedConfig], notice: Notice) -> None:
        redact = Redactor()
        try:
            loaded = load()
            notify = loaded.config.notify
            if not notify.urls or notice.event not in notify.events:
                return
            settings = env_settings(loaded, notice.env)
            redact = settings.redactor()
            title, body = build(notice, redact)
            urls = list(notify.urls)
            tries = (0.0, *RETRY_AFTER)
            for number, wait in enumerate(tries, 1):
                if wait and self.closing.wait(wait):
                    return
                deliveries = send_all(urls, settings.secrets, notice.env, title, body, redact)
                urls = [url for url, sent in zip(urls, deliveries, strict=True) if sent.retry]
                self._log(notice.event, deliveries, again=number < len(tries))
                if not urls:
                    return
        except Exception as exc:  # a notification is never worth more than a warning
            log.warning("notify %s: %s", notice.event, redact(f"{type(exc).__name__}: {exc}"))

    @staticmethod
    def _log(event: str, deliveries: list[Delivery], again: bool) -> None:
        for delivery in deliveries:
            if delivery.ok:
                log.info("notify %s: sent to %s", event, delivery.url)
            else:
                later = " (will try again)" if again and delivery.retry else ""
                log.warning("notify %s to %s: %s%s", event, delivery.url, delivery.error, later)
