"""`shiplane scale ENV NAME=N...`: how many of each worker of the serving release run, with no
new release. The counts are kept with what serves (a server restart brings them back); the
next deploy runs the counts of its own shiplane.toml."""

from __future__ import annotations

import re

from shiplane.errors import ConfigError
from shiplane.operations.database import env_lock
from shiplane.operations.session import Session
from shiplane.pipeline.steps_rollback import serving_release
from shiplane.results import Result
from shiplane.targets.base import InstanceSpec, WorkerSpec

ASSIGNMENT = re.compile(r"^([a-z][a-z0-9_-]{0,39})=(\d{1,3})$")
MAX_COUNT = 32  # config/processes.py MAX_COUNT


def parse_counts(assignments: list[str]) -> dict[str, int]:
    """``["worker=2", "mail=0"]`` -> counts; ConfigError (exit 64) naming a bad one."""
    if not assignments:
        raise ConfigError(
            "scale needs at least one NAME=COUNT", next_action="e.g. `shiplane scale dev worker=2`"
        )
    counts: dict[str, int] = {}
    for item in assignments:
        match = ASSIGNMENT.match(item)
        if match is None or int(match.group(2)) > MAX_COUNT:
            raise ConfigError(
                f"scale: {item!r} is not NAME=COUNT with a count from 0 to {MAX_COUNT}",
                next_action="e.g. `shiplane scale dev worker=2`",
            )
        counts[match.group(1)] = int(match.group(2))
    if "web" in counts:
        raise ConfigError(
            "scale: web runs as one instance, switched blue/green through the front door",
            next_action="scale the workers; web needs no count",
        )
    return counts


def check_scale(assignments: list[str]) -> None:
    parse_counts(assignments)


def scale(session: Session, env: str, assignments: list[str]) -> Result:
    counts = parse_counts(assignments)
    db = session.db
    release = serving_release(db, env)
    with env_lock(db, env, "scale"):
        state = db.env_state(env) or {}
        spec = InstanceSpec.from_stored(state["spec"])
        unknown = sorted(set(counts) - set(spec.workers))
        if unknown:
            known = ", ".join(sorted(spec.workers)) or "none"
            raise ConfigError(
                f"scale {env}: no process {unknown[0]!r} in the serving release"
                f" {release['name']} (its workers: {known})",
                next_action="add it under [processes] in shiplane.toml and deploy, or scale"
                " one of its workers",
            )
        workers = {
            name: WorkerSpec(run=worker.run, count=counts.get(name, worker.count))
            for name, worker in spec.workers.items()
        }
        scaled = spec.model_copy(update={"workers": workers})
        db.set_env_spec(env, scaled.to_stored())
        answer = session.target.processes(env).scale(scaled)
    result = Result(command="scale", env=env)
    result.data.update(
        release=release["name"],
        counts={name: worker.count for name, worker in workers.items()},
        processes=answer["workers"],
    )
    return result
