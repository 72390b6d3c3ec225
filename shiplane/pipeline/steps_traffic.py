"""Steps that start the new instance and move traffic to it: start, health, switch, drain."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from shiplane.config.frontdoor import door_settings, tls_settings
from shiplane.errors import DeployFailedError, ShiplaneError
from shiplane.pipeline import forward_hold
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.procenv import app_python_layer
from shiplane.targets.base import Instance, InstanceSpec, WorkerSpec
from shiplane.targets.health import HealthPolicy


def instance_spec(ctx: Context, release: str, release_dir: str, sha: str) -> InstanceSpec:
    env = ctx.settings.env_config
    return InstanceSpec(
        app=ctx.config.app.name,
        env=ctx.env,
        release=release,
        release_dir=release_dir,
        sha=sha,
        run=ctx.config.web_command,
        # The app's interpreter first on PATH: `python -m gunicorn` is the app's gunicorn.
        variables={
            **ctx.settings.variables,
            **app_python_layer(ctx.config.app.python, release_dir),
        },
        env_file=str(ctx.settings.env_file) if ctx.settings.env_file else None,
        database_url=ctx.facts.database_url,
        stop_timeout=ctx.config.app.stop_timeout,
        drain_timeout=ctx.config.deploy.drain_timeout,
        log_path=str(ctx.layout.logs(ctx.env) / f"app-{release}.log"),
        log_rotation=ctx.config.logs,
        health=ctx.config.app.health,
        monitor_interval=ctx.config.health.monitor_interval,
        static=ctx.config.app.static,
        static_max_age=ctx.config.app.static_max_age,
        workers={
            name: WorkerSpec(run=worker.run, count=worker.count)
            for name, worker in ctx.config.processes.workers.items()
        },
        worker_grace=ctx.config.processes.worker_grace,
        front_door=door_settings(
            env.port,
            env.listen,
            env.domains,
            env.trusted_proxies,
            env.front_door,
            tls_settings(env.tls, ctx.settings.tls_files) if env.tls else None,
        ),
    )


def _tail(path: str, lines: int = 8) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class StartStep(Step):
    name = "start"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        facts = ctx.facts
        spec = instance_spec(
            ctx, facts.need("release"), facts.need("release_dir"), facts.need("sha")
        )
        facts.spec = spec
        return {"spec": spec.to_stored()}

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        instance = ctx.target.start(InstanceSpec.from_stored(data["spec"]))
        ctx.facts.instance = instance
        port = instance.address.port
        data.update(instance_id=instance.id, port=port, summary=f"port {port}")
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        if not data.get("instance_id"):
            # Crashed between asking the target and hearing back: stop whatever it started.
            return _stop_unserving(ctx, data["spec"]["release"])
        ctx.target.stop(data["instance_id"])
        return f"stopped instance {data['instance_id']}"


def _stop_unserving(ctx: Context, release: str) -> str | None:
    if not ctx.target.available():
        return None
    active = ctx.traffic().active().instance_id
    stopped = []
    for instance in ctx.target.instances(ctx.env):
        if instance.release == release and instance.id != active:
            ctx.target.stop(instance.id)
            stopped.append(instance.id)
    return f"stopped {', '.join(stopped)}" if stopped else None


class HealthStep(Step):
    name = "health"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        health = ctx.config.health
        instance: Instance = ctx.facts.need("instance")
        url = instance.address.url(ctx.config.app.health)
        policy = HealthPolicy(
            interval=health.interval,
            timeout=health.timeout,
            request_timeout=health.request_timeout,
            retries=health.retries,
        )
        if ctx.facts.hold_started is not None:
            # Held: in time for a `down` to fit the same hold should the release not come up.
            policy = replace(policy, timeout=forward_hold.health_timeout(ctx, policy.timeout))
        outcome = ctx.target.wait_healthy(instance, ctx.config.app.health, policy)
        data["attempts"] = outcome.attempts
        data["seconds"] = outcome.seconds
        if outcome.healthy:
            data["summary"] = f"healthy after {outcome.attempts} check(s), {outcome.seconds:g}s"
            return data
        log_path = ctx.facts.need("spec").log_path
        if outcome.exit_code is not None:
            data["exit_code"] = outcome.exit_code
            ctx.log(f"instance exited with code {outcome.exit_code}:\n{outcome.output}")
            raise DeployFailedError(
                f"new instance exited with code {outcome.exit_code} after "
                f"{outcome.seconds:g}s, before it became healthy; its last output:\n"
                f"{ctx.redact(outcome.output)}",
                next_action=f"fix the app's start (run command, imports, settings); "
                f"instance log: {log_path}",
            )
        ctx.log(f"instance output:\n{_tail(log_path, 40)}")
        raise DeployFailedError(
            f"new instance never became healthy: {url} gave {outcome.last} for "
            f"{outcome.seconds:g}s ({outcome.attempts} checks); last output: "
            f"{ctx.redact(_tail(log_path, 3))!r}",
            next_action=f"fix the app's start or health route; instance log: {log_path}",
        )


class SwitchStep(Step):
    name = "switch"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        active = ctx.traffic().active()
        plan = ctx.facts.hold_plan
        return {
            "instance_id": ctx.facts.need("instance").id,
            "previous": active.instance_id,
            "previous_info": active.info,
            # A held migration the old code fails on: switching back holds first.
            "hold_back": bool(plan and plan.get("old_code_fails")),
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        info = {
            "sha": ctx.facts.need("sha"),
            "release": ctx.facts.need("release"),
            "deployment_id": ctx.deployment_id,
            "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        ctx.traffic().switch(data["instance_id"], info)
        ctx.facts.previous_instance = data["previous"]
        if ctx.facts.hold_started is not None:
            # A schema change ran under a hold: the new code serves, let the waiting through.
            ctx.traffic().release()
            data["hold_seconds"] = round(time.monotonic() - ctx.facts.hold_started, 3)
            ctx.facts.hold_seconds = data["hold_seconds"]
            ctx.facts.hold_started = None
        data["summary"] = f"port {ctx.settings.env_config.port} -> {ctx.facts.release}"
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        traffic = ctx.traffic()
        if data.get("hold_back") and ctx.facts.hold_started is None and ctx.target.available():
            # The old release fails on the new schema: requests wait from here until the
            # migrate step's undo has run `down` (it releases the hold).
            forward_hold.take(ctx)
        try:
            traffic.switch(data["previous"], data["previous_info"])
        except DeployFailedError:
            # The old instance is gone (server restarted): serve the recorded release again.
            restored = traffic.restore()
            return f"traffic back on the recorded release (instance {restored})"
        return f"traffic back on {data['previous'] or 'nothing (first deploy)'}"


class DrainStep(Step):
    """Let in-flight requests on the old instance finish, then stop it: in the background
    unless the caller asked to wait (``wait_drain``), so the deployment's result comes at the
    switch. The pivot: once the old instance is draining the deployment rolls forward, and a
    drain that fails later is logged, never undone."""

    name = "drain"
    pivot = True
    # Deploy and promote keep the old instance warm for a rollback; rollback and restart do
    # not (what they leave is the release rolled back from, or the same one).
    keeps_standby = True

    def standby(self, ctx: Context) -> float | None:
        """Seconds the drained instance stays on standby (None: it stops)."""
        deploy = ctx.config.deploy
        return deploy.standby_ttl if self.keeps_standby and deploy.standby else None

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {"previous": ctx.facts.previous_instance}

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        previous = data["previous"]
        if not previous:
            data["summary"] = "nothing to drain (first deploy)"
            return data
        timeout = ctx.config.deploy.drain_timeout
        wait = bool(ctx.options.get("wait_drain"))
        data["background"] = not wait
        standby = self.standby(ctx)
        data["standby_seconds"] = standby
        try:
            if wait:
                data["drained"] = ctx.traffic().drain(previous, timeout, standby=standby)
            else:
                ctx.traffic().drain_later(previous, timeout, ctx.deployment_id, standby=standby)
        except ShiplaneError as exc:
            # The new version serves already: a drain that goes wrong leaves the old
            # instance to the server's supervision, it does not take the new one down.
            ctx.log(f"!! drain of {previous} failed: {exc.message}")
            data["drain_error"] = exc.message
            data["summary"] = f"drain of {previous} failed (the new version serves): {exc}"
            return data
        if not wait:
            data["summary"] = f"draining {previous} in the background (up to {timeout:g}s)"
        elif data["drained"]:
            data["summary"] = "drained"
        else:
            data["summary"] = f"drain timed out after {timeout:g}s"
        if standby:
            data["summary"] += f", then on standby for {standby:g}s"
        return data
