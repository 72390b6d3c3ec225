"""Which release `rollback` goes back to: the one rule that prune must also keep."""

from __future__ import annotations

from typing import Any


def previous_release(
    releases: list[dict[str, Any]], current: dict[str, Any]
) -> dict[str, Any] | None:
    """The newest release older than ``current`` with another commit (``releases`` newest
    first). A redeploy of the same commit makes a new release; going back means another commit."""
    return next(
        (
            r
            for r in releases
            if r["created_at"] < current["created_at"] and r["sha"] != current["sha"]
        ),
        None,
    )
