"""One short message per event: what happened where, the error and what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shiplane.config.notify import EVENTS
from shiplane.config.redact import Redactor

MAX_TEXT = 300  # a chat line, not a log: the full story is in `shiplane logs`


@dataclass(frozen=True)
class Notice:
    event: str
    app: str
    env: str
    sha: str | None = None
    step: str | None = None
    error: str | None = None
    next_action: str | None = None
    deployment_id: str | None = None


def notice_from_result(event: str, app: str, result: dict[str, Any]) -> Notice:
    error = result.get("error") or {}
    return Notice(
        event=event,
        app=app,
        env=str(result.get("env") or "?"),
        sha=_sha(result),
        step=error.get("step"),
        error=error.get("message"),
        next_action=_next_action(result, error),
        deployment_id=result.get("deployment_id"),
    )


def _next_action(result: dict[str, Any], error: dict[str, Any]) -> str | None:
    """What to do: the result's own word, else where its full story is."""
    named = error.get("next_action") or result.get("next_action")
    if named:
        return str(named)
    if _first(result.get("next_actions")):
        return _first(result.get("next_actions"))
    deployment_id = result.get("deployment_id")
    return f"shiplane logs {deployment_id}" if error and deployment_id else None


def build(notice: Notice, redact: Redactor) -> tuple[str, str]:
    """(title, body) of ``notice``, every part passed through ``redact``."""
    sha = f" {notice.sha[:7]}" if notice.sha else ""
    title = f"shiplane {notice.app}/{notice.env}{sha}: {notice.event}"
    lines = [EVENTS.get(notice.event, notice.event)]
    if notice.deployment_id:
        lines.append(f"deployment: {notice.deployment_id}")
    if notice.step or notice.error:
        lines.append(f"step {notice.step or '?'}: {_short(notice.error or 'failed')}")
    if notice.next_action:
        lines.append(f"next: {_short(notice.next_action)}")
    return redact(title), redact("\n".join(lines))


def _sha(result: dict[str, Any]) -> str | None:
    """The sha the result is about: its own, or the one its evidence or release names."""
    for place in (result, result.get("evidence"), result.get("release"), result.get("to")):
        if isinstance(place, dict) and isinstance(place.get("sha"), str):
            return str(place["sha"])
    return None


def _first(value: object) -> str | None:
    return str(value[0]) if isinstance(value, list) and value else None


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
