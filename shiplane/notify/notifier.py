"""The server's notifier: sends in the background, so a slow or dead receiver never delays or
fails an operation; what goes wrong is a warning in the server log, redacted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shiplane.config.loader import LoadedConfig, env_settings
from shiplane.config.redact import Redactor
from shiplane.notify.events import event_for
from shiplane.notify.message import Notice, build, notice_from_result
from shiplane.notify.send import send_all

log = logging.getLogger("shiplane.notify")


class Notifier:
    def __init__(self, workers: int = 2) -> None:
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify")

    def close(self) -> None:
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
            deliveries = send_all(
                list(loaded.config.notify.urls),
                settings.secrets,
                notice.env,
                title,
                body,
                redact,
            )
        except Exception as exc:  # a notification is never worth more than a warning
            log.warning("notify %s: %s", notice.event, redact(f"{type(exc).__name__}: {exc}"))
            return
        for delivery in deliveries:
            if delivery.ok:
                log.info("notify %s: sent to %s", notice.event, delivery.url)
            else:
                log.warning("notify %s to %s: %s", notice.event, delivery.url, delivery.error)
