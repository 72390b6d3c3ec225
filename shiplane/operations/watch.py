"""A deploy's side of the watch after its switch: ask the server to watch what now serves
(``shiplane.server.watch``), wait for the verdict when the caller asked (``--wait-watch``),
and say in the result whether the deploy counts as promotion evidence.

With ``--wait-watch`` the result comes when the watch ends: exit 4 when the server rolled the
deploy back (the JSON names the reason and the rollback's deployment id), exit 5 when it found
the deploy bad but going back needs a destructive schema change (it still serves: a person
decides). Without it the deploy returns at the switch, as ever, with the watch running.
"""

from __future__ import annotations

import time
from typing import Any

from shiplane.errors import RollbackFailedError, ServerError, ShiplaneError, SmokeFailedError
from shiplane.operations import gate
from shiplane.operations.session import Session
from shiplane.pipeline.context import Context
from shiplane.results import Result
from shiplane.state.watches import LOCK_PATIENCE, WatchStore
from shiplane.targets.control_client import ServerClient
from shiplane.targets.local import LocalTarget

POLL = 0.25
# Beyond the watch itself: a rollback's start, health, checks and switch.
ROLLBACK_ALLOWANCE = 600.0


def after_switch(
    session: Session, ctx: Context, result: Result, wait: bool
) -> dict[str, Any] | None:
    """Start the watch of a deploy that succeeded (``result``), and, with ``wait``, wait for
    its end; returns the evidence the deploy gives for promotion (None: it failed)."""
    if not result.ok:
        return None
    result.data["watch"] = start(session, ctx)
    if wait and result.data["watch"]["state"] == "running":
        result.data["watch"] = await_end(session, ctx.deployment_id, result.data["watch"])
        judged(result, ctx.env)
    return gate.deploy_evidence(session.loaded, session.db, ctx.env, ctx.deployment_id)


def start(session: Session, ctx: Context) -> dict[str, Any]:
    deploy = ctx.config.deploy
    if deploy.watch <= 0:
        return {"state": "disabled", "reason": "deploy.watch = 0"}
    if not isinstance(session.target, LocalTarget):
        return {"state": "disabled", "reason": f"no watch on the {session.target.name} target"}
    body = {
        "deployment_id": ctx.deployment_id,
        "instance_id": ctx.facts.need("instance").id,
        "previous": ctx.facts.previous_instance,
        "settings": {
            "seconds": deploy.watch,
            "failed_probes": deploy.watch_failed_probes,
            "min_requests": deploy.watch_min_requests,
            "error_rate": deploy.watch_error_rate,
        },
    }
    path = f"/apps/{ctx.config.app.name}/envs/{ctx.env}/watch"
    try:
        ServerClient(session.layout.server).request("POST", path, body)
    except ShiplaneError as exc:
        # The deploy succeeded; a watch that cannot start is said, never a failure.
        ctx.log(f"!! the watch did not start: {exc.message}")
        return {"state": "not_started", "reason": exc.message}
    described = WatchStore(session.db).get(ctx.deployment_id)
    return described or {"state": "not_started", "reason": "the server recorded no watch"}


def await_end(session: Session, deployment_id: str, watch: dict[str, Any]) -> dict[str, Any]:
    """Poll state.db until the server's watch of ``deployment_id`` has ended."""
    store = WatchStore(session.db)
    seconds = float(session.loaded.config.deploy.watch)
    deadline = time.monotonic() + seconds + LOCK_PATIENCE + ROLLBACK_ALLOWANCE
    while time.monotonic() < deadline:
        current = store.get(deployment_id)
        if current is None or current["state"] != "running":
            return current or watch
        time.sleep(POLL)
    raise ServerError(
        f"the watch of {deployment_id} did not end in time",
        step="watch",
        next_action="shiplane status (the server's watch says where it is)",
    )


def judged(result: Result, env: str) -> None:
    """The result of a deploy that waited for its watch: failed when the watch found it bad."""
    watch = result.data["watch"]
    reason = watch.get("reason")
    if watch["state"] == "rolled_back":
        result.fail(
            SmokeFailedError(
                f"the watch rolled the deploy back: {reason}",
                step="watch",
                next_action=f"fix and deploy again; the rollback: shiplane logs "
                f"{watch.get('rollback_id')}",
            )
        )
        result.error = {
            **(result.error or {}),
            "reason": reason,
            "rollback_id": watch["rollback_id"],
        }
    elif watch["state"] == "alert":
        result.fail(
            RollbackFailedError(
                f"the watch found the deploy bad ({reason}) and did not roll back: "
                f"{watch['detail'].get('not_rolled_back')}",
                step="watch",
                next_action=f"a person decides: shiplane rollback {env}, or fix forward",
            )
        )
        result.error = {**(result.error or {}), "reason": reason}
