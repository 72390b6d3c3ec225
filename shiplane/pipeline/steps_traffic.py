"""Steps that start the new instance and move traffic to it: start, health, switch, smoke, drain."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from shiplane.errors import DeployFailedError, ServerError
from shiplane.pipeline.context import Context
from shiplane.pipeline.saga import Step
from shiplane.runtime.local import InstanceSpec


def instance_spec(ctx: Context, release: str, release_dir: str, sha: str) -> InstanceSpec:
    assert ctx.settings is not None
    return InstanceSpec(
        env=ctx.env,
        release=release,
        release_dir=release_dir,
        sha=sha,
        run=ctx.config.app.run,
        variables=ctx.settings.variables,
        env_file=str(ctx.settings.env_file) if ctx.settings.env_file else None,
        database_url=ctx.facts.get("database_url"),
        stop_timeout=ctx.config.app.stop_timeout,
        log_path=str(ctx.layout.logs(ctx.env) / f"app-{release}.log"),
        health=ctx.config.app.health,
        port=ctx.settings.env.port,
    )


def _tail(path: str, lines: int = 8) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class StartStep(Step):
    name = "start"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        spec = instance_spec(ctx, ctx.facts["release"], ctx.facts["release_dir"], ctx.facts["sha"])
        ctx.facts["spec"] = spec
        return {"spec": spec.to_dict()}

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        ctx.server.ensure_running()
        info = ctx.server.request("POST", "/instances", {"spec": data["spec"]})
        ctx.facts["instance"] = info
        data.update(instance_id=info["id"], port=info["port"], summary=f"port {info['port']}")
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        if not data.get("instance_id"):
            # Crashed between asking the server and hearing back: stop whatever it started.
            return _stop_unserving(ctx, data["spec"]["release"])
        ctx.server.request("POST", f"/instances/{data['instance_id']}/stop")
        return f"stopped instance {data['instance_id']}"


def _stop_unserving(ctx: Context, release: str) -> str | None:
    if ctx.server.ping() is None:
        return None
    active = ctx.server.request("GET", f"/envs/{ctx.env}/active")
    status = ctx.server.request("GET", "/status")
    env_status = status["envs"].get(ctx.env, {"instances": []})
    stopped = []
    for item in env_status["instances"]:
        if item["release"] == release and item["id"] != active["instance_id"]:
            ctx.server.request("POST", f"/instances/{item['id']}/stop")
            stopped.append(item["id"])
    return f"stopped {', '.join(stopped)}" if stopped else None


class HealthStep(Step):
    name = "health"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        health = ctx.config.health
        instance = ctx.facts["instance"]
        url = f"http://127.0.0.1:{instance['port']}{ctx.config.app.health}"
        deadline = time.monotonic() + health.timeout
        attempts = 0
        last = "no answer"
        # Plain HTTP on loopback: verify=False only skips loading a CA bundle never used.
        with httpx.Client(timeout=health.request_timeout, verify=False) as client:
            while True:
                attempts += 1
                try:
                    response = client.get(url)
                    if 200 <= response.status_code < 300:
                        data["summary"] = f"healthy after {attempts} check(s)"
                        data["attempts"] = attempts
                        return data
                    last = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                if time.monotonic() + health.interval > deadline:
                    break
                if health.retries is not None and attempts >= health.retries:
                    break
                time.sleep(health.interval)
        spec: InstanceSpec = ctx.facts["spec"]
        ctx.log(f"instance output:\n{_tail(spec.log_path, 40)}")
        raise DeployFailedError(
            f"new instance never became healthy: {url} gave {last} for {health.timeout:g}s "
            f"({attempts} checks); last output: {ctx.redact(_tail(spec.log_path, 3))!r}",
            next_action=f"fix the app's start or health route; instance log: {spec.log_path}",
        )


class SwitchStep(Step):
    name = "switch"

    def prepare(self, ctx: Context) -> dict[str, Any]:
        ctx.server.ensure_running()
        active = ctx.server.request("GET", f"/envs/{ctx.env}/active")
        assert ctx.settings is not None
        return {
            "instance_id": ctx.facts["instance"]["id"],
            "previous": active["instance_id"],
            "previous_info": active["info"],
            "port": ctx.settings.env.port,
        }

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        info = {
            "sha": ctx.facts["sha"],
            "release": ctx.facts["release"],
            "deployment_id": ctx.deployment_id,
            "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        body = {"instance_id": data["instance_id"], "port": data["port"], "info": info}
        try:
            ctx.server.request("POST", f"/envs/{ctx.env}/switch", body)
        except ServerError as exc:
            raise DeployFailedError(exc.message) from exc
        ctx.facts["previous_instance"] = data["previous"]
        data["summary"] = f"port {data['port']} -> {ctx.facts['release']}"
        return data

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        ctx.server.ensure_running()
        body = {
            "instance_id": data["previous"],
            "port": data["port"],
            "info": data["previous_info"],
        }
        try:
            ctx.server.request("POST", f"/envs/{ctx.env}/switch", body)
        except ServerError:
            # The old instance is gone (server restarted): serve the recorded release again.
            restored = ctx.server.request("POST", f"/envs/{ctx.env}/restore")
            return f"traffic back on the recorded release (instance {restored['instance_id']})"
        return f"traffic back on {data['previous'] or 'nothing (first deploy)'}"


class DrainStep(Step):
    """Let in-flight requests on the old instance finish, then stop it. The pivot: from here on
    the deployment rolls forward."""

    name = "drain"
    pivot = True

    def prepare(self, ctx: Context) -> dict[str, Any]:
        return {"previous": ctx.facts.get("previous_instance")}

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        if not data["previous"]:
            data["summary"] = "nothing to drain (first deploy)"
            return data
        timeout = ctx.config.deploy.drain_timeout
        result = ctx.server.request(
            "POST", f"/envs/{ctx.env}/drain", {"instance_id": data["previous"], "timeout": timeout}
        )
        data["drained"] = result["drained"]
        data["summary"] = "drained" if result["drained"] else f"drain timed out after {timeout:g}s"
        return data
