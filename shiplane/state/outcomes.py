"""A deployment's outcome as its users think of it, from its record and its steps.

succeeded                 it serves
aborted                   stopped before any traffic switched (exit 1, 2 or 3): nothing
                          changed for users
rolled_back               it switched, then the old version was put back (exit 3 or 4)
rolled_back_after_watch   the server's watch after the switch put the old version back on
                          its own (shiplane.server.watch sets the deployment's status)
failed_critical           an undo or rollback failed (exit 5): a person must look, then
                          `shiplane recover --resolve ID`
refused, running, succeeded_with_errors   as recorded
"""

from __future__ import annotations

from typing import Any

OUTCOMES = (
    "succeeded",
    "aborted",
    "rolled_back",
    "rolled_back_after_watch",
    "failed_critical",
    "refused",
    "running",
    "succeeded_with_errors",
)

# The steps whose undo means users had been served the new version.
_SWITCHED = frozenset({"switch", "drain"})


def outcome(deployment: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    status = str(deployment.get("status") or "")
    if status in ("running", "refused", "rolled_back_after_watch", "succeeded_with_errors"):
        return status
    if status == "rollback_failed" or deployment.get("exit_code") == 5:
        return "failed_critical"
    if any(step["status"] == "undo_failed" for step in steps):
        return "failed_critical"
    if status == "succeeded":
        return "succeeded"
    switched = any(step["name"] in _SWITCHED and step["status"] == "undone" for step in steps)
    if switched or deployment.get("exit_code") == 4:
        return "rolled_back"
    return "aborted"
