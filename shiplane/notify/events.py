"""Which notification event an operation's result is, if any."""

from __future__ import annotations

from typing import Any

# Exits that mean a deploy or promotion broke (build, deploy, smoke, rollback itself).
FAILED_EXITS = frozenset({2, 3, 4, 5})


def event_for(command: str, result: dict[str, Any]) -> str | None:
    """The event ``result`` (``Result.to_dict()`` of operation ``command``) is about."""
    exit_code = result.get("exit_code")
    error = result.get("error") or {}
    if error.get("step") == "watch":
        return None  # the watch tells of its own rollback (rolled_back_after_watch), once
    if command in ("promote", "approve"):
        if exit_code == 6 and error.get("step") == "approval":
            return "approval_needed" if command == "promote" else None
        if exit_code in FAILED_EXITS:
            return "promote_failed"
        return "promote_succeeded" if exit_code == 0 and _switched(result) else None
    if command == "deploy":
        if exit_code in FAILED_EXITS:
            return "deploy_failed"
        return "deploy_succeeded" if exit_code == 0 and _switched(result) else None
    if command == "rollback":
        if exit_code == 0 and _switched(result):
            return "rollback"
        return "rollback_failed" if exit_code in FAILED_EXITS else None
    return None


def _switched(result: dict[str, Any]) -> bool:
    """A no-op (already serving that sha) is not news."""
    return bool(result.get("ok")) and not result.get("already_serving")
