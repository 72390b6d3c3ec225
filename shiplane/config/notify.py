"""``[notify]``: where shiplane tells people what happened (apprise URLs) and about what."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Every event a notification can be about; the server decides which one a result is
# (shiplane.notify.events).
EVENTS: dict[str, str] = {
    "deploy_failed": "a deploy failed (exit 2, 3, 4 or 5)",
    "promote_failed": "a promotion failed (exit 2, 3, 4 or 5)",
    "rollback": "a person or an agent rolled back",
    "rollback_failed": "a rollback failed",
    "rolled_back_after_watch": "the watch after a switch rolled back on its own",
    "watch_alert": "the watch saw a bad version but could not roll back (destructive down)",
    "approval_needed": "a promotion waits for a person's approval",
    "deploy_succeeded": "a deploy succeeded",
    "promote_succeeded": "a promotion succeeded",
}
# Successes are routine: only what needs someone's attention is sent unless asked.
DEFAULT_EVENTS = (
    "deploy_failed",
    "promote_failed",
    "rollback",
    "rollback_failed",
    "rolled_back_after_watch",
    "watch_alert",
    "approval_needed",
)
MAX_URLS = 16
MAX_URL_LENGTH = 2048


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    urls: list[str] = Field(
        default_factory=list,
        description="apprise URLs (json://, slack://, tgram://...); ${NAME} comes from the"
        " environment's env_file, so tokens stay out of shiplane.toml.",
    )
    events: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS),
        description="which events are sent; default: failures, rollbacks, alerts, approvals.",
    )

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_URLS:
            raise ValueError(f"notify.urls has {len(value)} URLs; keep at most {MAX_URLS}")
        for url in value:
            if "://" not in url or len(url) > MAX_URL_LENGTH:
                # Only the scheme is named: the rest of a URL may be a token.
                scheme = url.split(":", 1)[0][:20]
                raise ValueError(
                    f"notify.urls: a value starting {scheme!r} is not an apprise URL"
                    " (SCHEME://...; e.g. json://host/path or tgram://${BOT_TOKEN}/CHAT_ID)"
                )
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in EVENTS:
                raise ValueError(
                    f"notify.events = {name!r} is not an event; use any of: {', '.join(EVENTS)}"
                )
        return value
