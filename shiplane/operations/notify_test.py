"""`shiplane notify test [ENV]`: one test message to every [notify] URL, each reported
ok/failed by scheme and host only."""

from __future__ import annotations

from shiplane.config.loader import env_settings
from shiplane.errors import ConfigError, NotifyFailed
from shiplane.notify.message import Notice, build
from shiplane.notify.send import send_all
from shiplane.operations.session import Session
from shiplane.results import Result


def notify_test(s: Session, env: str | None = None) -> Result:
    config = s.loaded.config
    if not config.notify.urls:
        raise ConfigError(
            f"{s.loaded.display}: [notify] has no urls",
            next_action='add [notify] urls = ["json://HOST/PATH"] (any apprise URL)',
        )
    # The env whose env file fills the URLs' ${NAME}s: the first one unless named.
    name = env or next(iter(config.environments))
    settings = env_settings(s.loaded, name)
    redact = settings.redactor()
    title, body = build(Notice(event="test", app=config.app.name, env=name), redact)
    body = redact(f"a test message from `shiplane notify test {name}`")
    deliveries = send_all(list(config.notify.urls), settings.secrets, name, title, body, redact)
    result = Result(command="notify test", env=name)
    result.data["urls"] = [d.to_dict() for d in deliveries]
    failed = [d.url for d in deliveries if not d.ok]
    if failed:
        result.fail(
            NotifyFailed(
                f"{len(failed)} of {len(deliveries)} notify URL(s) failed: {', '.join(failed)}",
                step="notify",
                next_action="check the receiver and the URL (and its ${NAME}s in the env file)",
            )
        )
    return result
