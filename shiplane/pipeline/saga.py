"""The saga runner: write-ahead step records, and undo of done steps newest first on failure."""

from __future__ import annotations

import time
import traceback
from typing import Any, ClassVar

from shiplane.errors import RollbackFailedError, ShiplaneError
from shiplane.pipeline.context import Context, fault_point
from shiplane.results import StepResult


class Step:
    """One pipeline step. ``prepare`` has no side effects; its data is written before ``run``
    acts, so a crash mid-step leaves enough for ``undo`` (which must be idempotent)."""

    name: ClassVar[str]
    pivot: ClassVar[bool] = False  # once done, the deployment rolls forward, never back

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {}

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        """Reverse the step; returns what was done, for the report."""
        return None

    def roll_forward(self, ctx: Context, records: dict[str, dict[str, Any]]) -> None:
        """Finish this step's lasting effect for a deployment that died past the pivot;
        ``records`` maps each recorded step's name to its data. Idempotent."""


class SagaFailed(Exception):
    def __init__(self, error: ShiplaneError, undone: list[str], past_pivot: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        self.undone = undone
        self.past_pivot = past_pivot


def run_steps(ctx: Context, steps: list[Step], results: list[StepResult]) -> None:
    done: list[tuple[int, Step, dict[str, Any]]] = []
    committed = False
    for seq, step in enumerate(steps):
        data: dict[str, Any] = {}
        ctx.progress(step.name, "started")
        ctx.log(f"== {step.name}")
        started = time.monotonic()
        try:
            data = step.prepare(ctx)
            ctx.db.step_started(ctx.deployment_id, seq, step.name, data)
            fault_point(step.name)
            data = step.run(ctx, data)
        except Exception as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            error = _as_shiplane_error(exc, step.name, ctx)
            ctx.db.step_started(ctx.deployment_id, seq, step.name, data)
            ctx.db.step_finished(ctx.deployment_id, seq, "failed", elapsed, data, error.message)
            results.append(StepResult(step.name, "failed", elapsed, error.message))
            ctx.progress(step.name, "failed")
            ctx.log(f"!! {step.name} failed: {error.message}")
            if committed:
                # Past the pivot the new version serves; report, do not roll back.
                raise SagaFailed(error, [], past_pivot=True) from exc
            done.append((seq, step, data))  # a half-done step is undone too
            undone = undo_steps(ctx, done)
            raise SagaFailed(error, undone) from exc
        elapsed = int((time.monotonic() - started) * 1000)
        ctx.db.step_finished(ctx.deployment_id, seq, "done", elapsed, data)
        fault_point(step.name, "after")
        results.append(StepResult(step.name, "done", elapsed, data.get("summary")))
        ctx.progress(step.name, "done")
        done.append((seq, step, data))
        committed = committed or step.pivot


def undo_steps(ctx: Context, done: list[tuple[int, Step, dict[str, Any]]]) -> list[str]:
    """Undo newest first; one failed undo makes the whole undo CRITICAL (exit 5)."""
    undone: list[str] = []
    failures: list[str] = []
    for seq, step, data in reversed(done):
        ctx.progress(step.name, "undoing")
        try:
            what = step.undo(ctx, data)
        except Exception as exc:
            ctx.log(f"!! undo {step.name} failed: {exc}\n{traceback.format_exc()}")
            ctx.db.set_step_status(ctx.deployment_id, seq, "undo_failed")
            failures.append(f"{step.name}: {exc}")
            continue
        ctx.db.set_step_status(ctx.deployment_id, seq, "undone")
        if what:
            ctx.log(f"<< undo {step.name}: {what}")
            undone.append(f"{step.name}: {what}")
    if failures:
        raise RollbackFailedError(
            "undo failed for " + "; ".join(failures),
            step="undo",
            next_action="run `shiplane status` and read the deployment log; fix by hand, then "
            "`shiplane recover`",
        )
    return undone


def _as_shiplane_error(exc: Exception, step: str, ctx: Context) -> ShiplaneError:
    if isinstance(exc, ShiplaneError):
        if exc.step is None:
            exc.step = step
        return exc
    ctx.log(traceback.format_exc())
    from shiplane.errors import DeployFailedError

    return DeployFailedError(
        f"{type(exc).__name__}: {exc}",
        step=step,
        next_action=f"read the deployment log ({ctx.log.path})",
    )


def resume(
    ctx: Context, records: list[dict[str, Any]], classes: dict[str, type[Step]]
) -> tuple[str, list[str]]:
    """Finish a deployment whose process died, from its step records: past a done pivot the
    new version serves, so the plan's later steps roll forward; before it, every recorded
    step (started, done or failed) is undone newest first. Returns ("forward" | "undone",
    what was done)."""
    done_pivot = next(
        (
            r
            for r in records
            if r["status"] == "done" and r["name"] in classes and classes[r["name"]].pivot
        ),
        None,
    )
    if done_pivot is not None:
        by_name = {r["name"]: r["data"] for r in records}
        names = list(classes)
        for name in names[names.index(done_pivot["name"]) + 1 :]:
            classes[name]().roll_forward(ctx, by_name)
        return "forward", []
    todo = [
        (r["seq"], classes[r["name"]](), r["data"])
        for r in records
        if r["status"] in ("started", "done", "failed") and r["name"] in classes
    ]
    return "undone", undo_steps(ctx, todo)
