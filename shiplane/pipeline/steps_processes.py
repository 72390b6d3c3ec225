"""The process types beyond web: the release phase (once per deploy, before start) and the
workers (from the new release after the switch; the old ones stop once the new stay up).

Workers are paused around what changes the schema or the data under them (targets/pausing.py).
"""

from __future__ import annotations

import shlex
from typing import Any

from shiplane.databases import resolve_url
from shiplane.errors import DeployFailedError
from shiplane.launch import launcher
from shiplane.launch.base import RunAs, run_captured
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.procenv import app_python_layer, child_environment
from shiplane.targets.base import InstanceSpec
from shiplane.targets.output import quote_output


class ReleaseStep(Step):
    """``processes.release`` in the release dir, with what the env gives its processes (like
    Heroku's release phase): after build and migrations, before anything starts. Its failure
    fails the deploy with nothing switched; there is nothing of it to undo."""

    name = "release"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        command = ctx.config.processes.release
        if not command:
            data["summary"] = "no release command"
            return data
        release_dir = ctx.facts.need("release_dir")
        own = {
            "SHIPLANE_ENV": ctx.env,
            "SHIPLANE_SHA": ctx.facts.need("sha"),
            "SHIPLANE_RELEASE": ctx.facts.need("release"),
        }
        if ctx.facts.database_url:
            own["DATABASE_URL"] = resolve_url(ctx.facts.database_url, ctx.settings.secrets)
        env = child_environment(ctx.settings.variables, ctx.settings.secrets, own)
        env.update(app_python_layer(ctx.config.app.python, release_dir, env))
        timeout = ctx.config.deploy.build_timeout
        ctx.log(f"$ {command}")
        try:
            done = run_captured(
                launcher(),
                shlex.split(command),
                run_as=RunAs(ctx.config.app.name, ctx.env),
                cwd=release_dir,
                env=env,
                timeout=timeout,
            )
        except OSError as exc:
            raise DeployFailedError(
                f"release command {command!r} could not start: {exc.strerror or exc}",
                next_action="fix processes.release in shiplane.toml",
            ) from exc
        output = ctx.redact((done.stdout + done.stderr).rstrip())
        ctx.log(output)
        if done.timed_out:
            raise DeployFailedError(
                f"release command {command!r} ran past {timeout:g}s and was stopped",
                next_action="make it faster, or raise deploy.build_timeout",
            )
        if done.returncode != 0:
            raise DeployFailedError(
                f"release command {command!r} exited {done.returncode}; its last output:\n"
                + quote_output(output.splitlines()),
                next_action=f"fix processes.release and commit; full output in {ctx.log.path}",
            )
        data["summary"] = f"{command!r} done"
        return data


class WorkersStep(Step):
    """The new release's workers replace the old ones: they must stay up ``worker_grace``
    seconds, else the deploy fails (the switch is undone) and the old workers keep running."""

    name = "workers"
    fresh: bool = False  # start new ones even when the same release's run (a restart)

    def prepare(self, ctx: Context) -> dict[str, Any]:
        spec: InstanceSpec = ctx.facts.need("spec")
        state = ctx.db.env_state(ctx.env)
        return {
            "spec": spec.to_stored(),
            # What ran before: an undo (or recovery's) brings those workers back.
            "previous_spec": state.get("spec") if state else None,
            "grace": spec.worker_grace,
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        spec = InstanceSpec.from_stored(data["spec"])
        previous = data.get("previous_spec")
        if not spec.workers and not (previous and previous.get("workers")):
            data["summary"] = "no workers"
            return data
        grace = float(data["grace"])
        outcome = ctx.target.processes(ctx.env).replace(spec, grace, self.fresh)
        if not outcome["ok"]:
            failed = outcome["failed"]
            name = failed["process"]
            data["failed"] = {k: failed[k] for k in ("process", "exit_code", "seconds")}
            what = (
                f"exited with code {failed['exit_code']} after {failed['seconds']:g}s, within"
                f" worker_grace = {grace:g}s"
                if failed["exit_code"] is not None
                else "did not start"
            )
            raise DeployFailedError(
                f"worker {name!r} of {spec.release} {what}; its last output:\n"
                f"{ctx.redact(failed['output'])}",
                next_action=f"fix processes.{name} (the old workers still run); worker log:"
                f" {spec.log_path}",
            )
        data.update(started=outcome["started"], stopped=outcome["stopped"])
        data["summary"] = (
            f"{len(outcome['started'])} worker(s) of {spec.release} up for {grace:g}s;"
            f" stopped {len(outcome['stopped'])} old"
        )
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        spec = InstanceSpec.from_stored(data["spec"])
        previous = data.get("previous_spec")
        back = (
            InstanceSpec.from_stored(previous)
            if previous
            else spec.model_copy(update={"workers": {}})
        )
        if not spec.workers and not back.workers:
            return None
        if not ctx.target.available():
            return None  # the server is gone, and with it every worker it ran
        outcome = ctx.target.processes(ctx.env).replace(back, 0)
        if outcome.get("kept"):
            return f"the workers of {back.release} kept running"
        return f"workers of {back.release} running again" if back.workers else "workers stopped"


class RestartWorkersStep(WorkersStep):
    """A restart's workers: fresh processes of the same release (new variables, a stuck
    worker), replaced as a deploy's are."""

    fresh = True
