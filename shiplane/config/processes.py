"""``[processes]``: the app's process types, Procfile-compatible.

    [processes]
    web = "python -m gunicorn -b {host}:{port} app:app"   # blue/green through the front door
    worker = "python worker.py"                            # any other name: a worker
    mail = { run = "python mail.py", count = 2 }           # a worker with a count
    release = "python manage.py collectstatic --noinput"   # once per deploy, before start
    worker_grace = 5                                       # seconds a new worker must stay up

``[app] run`` stays an alias for ``processes.web`` (models.Config refuses both at once).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The keys of [processes] that are not process types.
RESERVED = ("web", "release", "worker_grace")
PROCESS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MAX_COUNT = 32


def _check_command(value: str) -> str:
    if not value.strip():
        raise ValueError('must be a command, e.g. "python worker.py"')
    try:
        shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; quote it as a shell would") from None
    return value


class WorkerConfig(BaseModel):
    # The same strictness as models.Strict (not imported: models imports this module).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    run: str = Field(description="Command of this worker (no port: it serves no traffic).")
    count: int = Field(default=1, ge=0, le=MAX_COUNT, description="How many run at once.")

    _run = field_validator("run")(_check_command)


class ProcessesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    web: str | None = Field(
        default=None, description="Serves the app on {port}: blue/green through the front door."
    )
    release: str | None = Field(
        default=None,
        description="Runs once per deploy in the release dir, after build and migrations and"
        " before start; its failure fails the deploy.",
    )
    worker_grace: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="Seconds a new worker must stay up, else the deploy fails and rolls back.",
    )
    workers: dict[str, WorkerConfig] = Field(
        default_factory=dict, description="Every other key of [processes]: name -> worker."
    )

    @model_validator(mode="before")
    @classmethod
    def _gather_workers(cls, data: Any) -> Any:
        # A Procfile has one namespace; so does [processes]: every key that is not web,
        # release or worker_grace names a worker, given as a command or a table.
        if not isinstance(data, dict):
            return data
        if "workers" in data:
            raise ValueError(
                "name each worker as its own key, e.g. worker = \"rq worker\" (not a 'workers'"
                " table)"
            )
        known = {k: v for k, v in data.items() if k in RESERVED}
        workers: dict[str, Any] = {}
        for name, value in data.items():
            if name in RESERVED:
                continue
            if not PROCESS_NAME.match(name):
                raise ValueError(
                    f"processes.{name}: a process name uses lowercase letters, digits, '-' or"
                    " '_', starting with a letter"
                )
            if not isinstance(value, str | dict):
                raise ValueError(
                    f'processes.{name} = {value!r}: give a command, e.g. {name} = "python'
                    f' worker.py", or a table, e.g. {name} = {{ run = "python worker.py",'
                    " count = 2 }"
                )
            workers[name] = {"run": value} if isinstance(value, str) else value
        return {**known, "workers": workers}

    @field_validator("web", "release")
    @classmethod
    def _commands(cls, value: str | None) -> str | None:
        return value if value is None else _check_command(value)

    def counts(self) -> dict[str, int]:
        return {name: worker.count for name, worker in self.workers.items()}
