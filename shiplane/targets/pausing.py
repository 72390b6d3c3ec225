"""Workers are paused (stopped, and started again afterwards) around what changes the schema
or the data under them: a forward migration under a hold, a schema rollback, a checked
restore. A worker writing meanwhile would meet a half-changed schema, or see its write
discarded by the restore."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shiplane.errors import ShiplaneError
from shiplane.targets.base import DeployTarget


def pause_workers(target: DeployTarget, env: str) -> list[str]:
    """Stop the env's workers before the schema or the data changes under them."""
    try:
        return target.processes(env).pause()
    except ShiplaneError:
        return []  # no server, no workers: nothing writes


def resume_workers(target: DeployTarget, env: str) -> list[str]:
    """Start again what ``pause_workers`` stopped (nothing when a deploy replaced them)."""
    return target.processes(env).resume()


@contextmanager
def workers_paused(target: DeployTarget, env: str) -> Iterator[list[str]]:
    stopped = pause_workers(target, env)
    try:
        yield stopped
    finally:
        if stopped:
            resume_workers(target, env)
