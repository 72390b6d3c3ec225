"""`shiplane restart ENV`: a fresh instance of the serving release, switched to with no request
dropped (the "restart" plan), e.g. to apply settings changed with `shiplane env set`."""

from __future__ import annotations

from shiplane.operations.execute import execute, make_context
from shiplane.operations.session import Session
from shiplane.pipeline.steps_rollback import serving_release
from shiplane.results import Result


def restart(session: Session, env: str, wait_drain: bool = False) -> Result:
    """``wait_drain``: the result comes once the replaced instance drained, not at the switch."""
    # Nothing serves: refused before anything is recorded (a serving release whose directory
    # is gone is built again by the target step).
    serving_release(session.db, env, on_disk=False)
    ctx = make_context(session, env, "restart", {"wait_drain": wait_drain})
    result = execute(ctx, "restart")
    instance = ctx.facts.instance
    result.data.update(
        sha=ctx.facts.sha,
        release=ctx.facts.release,
        instance_id=instance.id if instance is not None and result.ok else None,
        recovered=session.recovered,
    )
    return result
