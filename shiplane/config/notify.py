"""``[notify]``: where shiplane tells people what happened (apprise URLs) and about what."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

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

    # One validator for the table, not one per field: a field's error would quote its value,
    # and a notify URL is a token (the table's own message names only a URL's scheme).
    @model_validator(mode="after")
    def _check(self) -> NotifyConfig:
        if len(self.urls) > MAX_URLS:
            raise ValueError(f"urls has {len(self.urls)} URLs; keep at most {MAX_URLS}")
        for url in self.urls:
            if "://" not in url or len(url) > MAX_URL_LENGTH:
                scheme = url.split("://", 1)[0] if "://" in url else "(none)"
                raise ValueError(
                    f"urls: a URL with scheme {scheme[:20]!r} is not an apprise URL (SCHEME://...,"
                    f" at most {MAX_URL_LENGTH} characters; e.g. json://host/path or"
                    " tgram://${BOT_TOKEN}/CHAT_ID)"
                )
        for name in self.events:
            if name not in EVENTS:
                raise ValueError(
                    f"events = {name!r} is not an event; use any of: {', '.join(EVENTS)}"
                )
        return self
