"""Read-only operations: status, history, logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from shiplane import protection
from shiplane.config.loader import env_settings
from shiplane.databases.env_database import open_env_database
from shiplane.errors import ConfigError
from shiplane.gate import events
from shiplane.migrate.registry import engine_for
from shiplane.migrate.schema import schema_state
from shiplane.operations.session import Session
from shiplane.results import Result, StepResult
from shiplane.state import lock
from shiplane.state.maintenance import MaintenanceStore
from shiplane.state.outcomes import outcome
from shiplane.state.watches import WatchStore


def _frontdoor(url: str) -> dict[str, Any]:
    try:
        with httpx.Client(timeout=3, verify=False) as client:
            version = client.get(f"{url}/_deploy/version").json()
            health = client.get(f"{url}/_deploy/health")
        detail = {k: v for k, v in health.json().items() if k not in ("ok", "env", "sha")}
        return {
            "reachable": True,
            "sha": version.get("sha"),
            "healthy": health.status_code == 200,
            "health": detail,
        }
    except (httpx.HTTPError, ValueError):
        return {"reachable": False, "sha": None, "healthy": False, "health": None}


def status(session: Session, env: str | None) -> Result:
    loaded, layout, db = session.loaded, session.layout, session.db
    names = [env] if env else sorted(loaded.config.environments)
    envs: dict[str, Any] = {}
    running = session.target.available()
    for name in names:
        settings = env_settings(loaded, name)
        state = db.env_state(name)
        url = session.target.traffic(name, settings.env_config.port).url()
        unreachable = {"reachable": False, "sha": None, "healthy": False, "health": None}
        door = _frontdoor(url) if running else unreachable
        database = open_env_database(layout, settings)
        schema = schema_state(db, name, database) if database else None
        migrations: dict[str, Any] = {}
        if database and state and state.get("release"):
            release_dir = Path(state["spec"].get("release_dir", ""))
            migrations = engine_for(loaded.config, database).status(release_dir).to_dict()
        processes = _processes(session, name, settings.env_config.port) if running else []
        holder = lock.holder(db, name)
        recorded_sha = state["sha"] if state else None
        runtime = session.target.runtime(name) if running else {}
        envs[name] = {
            "release": state["release"] if state else None,
            "sha": recorded_sha,
            "deployed_at": state["updated_at"] if state else None,
            "port": settings.env_config.port,
            "url": url + "/",
            "serving_sha": door["sha"],
            "healthy": door["healthy"],
            # What the server's monitor found: state, since, restarts, failures.
            "health": door["health"],
            "consistent": door["sha"] == recorded_sha,
            # The warm instance a rollback switches to, what both cost in memory, and the
            # PostgreSQL connection budget they draw on (shiplane.server.env_report).
            "standby": runtime.get("standby"),
            "memory": runtime.get("memory"),
            "connections": runtime.get("connections"),
            "migrations": migrations,
            "schema": schema,
            "lock": holder["deployment_id"] if holder else None,
            # Every process the server runs for the env: web instances and workers.
            "processes": processes,
            "maintenance": MaintenanceStore(db).current(name).to_dict(),
            # The watch after the last switch: running, clean, rolled_back (with the reason
            # and the rollback's id), alert, superseded or interrupted.
            "watch": WatchStore(db).latest(name),
            "last_deployments": [
                {**_brief(d), "outcome": outcome(d, db.steps(d["id"]))}
                for d in db.deployments(name, limit=3)
            ],
        }
    result = Result(command="status", env=env)
    result.data.update(
        app=loaded.config.app.name,
        root=str(layout.root),
        server=session.target.describe(),
        envs=envs,
        recovered=session.recovered,
        # Honest in both modes: how binding the role rules and the gate are on this host.
        mode=protection.mode_of(layout.server),
        server_user=protection.server_user(),
        **protection.marks(layout.server),
    )
    return result


def _processes(session: Session, env: str, port: int) -> list[dict[str, Any]]:
    serving = session.target.traffic(env, port).active().instance_id
    web = [
        {
            "process": "web",
            "id": i.id,
            "pid": i.pid,
            "state": i.state,
            "restarts": i.restarts,
            "release": i.release,
            "serving": i.id == serving,
        }
        for i in session.target.instances(env)
    ]
    keys = ("process", "id", "pid", "state", "restarts", "release")
    listing = session.target.processes(env).listing()
    workers = [{k: w.get(k) for k in keys} for w in listing["workers"]]
    if listing["paused"]:
        workers += [
            {"process": name, "state": "paused", "count": count}
            for name, count in listing["counts"].items()
        ]
    return web + workers


def _brief(d: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "kind",
        "status",
        "sha",
        "release",
        "started_at",
        "finished_at",
        "exit_code",
        "actor",
    )
    return {k: d.get(k) for k in keys}


def history(session: Session, env: str | None, limit: int) -> Result:
    result = Result(command="history", env=env)
    rows = session.db.deployments(env, limit=limit)
    result.data["deployments"] = [
        {
            **_brief(d),
            "outcome": outcome(d, session.db.steps(d["id"])),
            "error": d.get("error"),
            "forced": d.get("forced"),
            "resolved_by": d.get("resolved_by"),
        }
        for d in rows
    ]
    # What the gate decided: refusals (which leave no deployment), approvals, overrides and
    # pin changes, with who asked and who decided.
    result.data["gate_events"] = events.recent(session.db, env, limit)
    result.data["promotions"] = promotions(session.db, env, limit)
    result.data["maintenance"] = MaintenanceStore(session.db).history(env, limit)
    return result


def logs(session: Session, deployment_id: str, offset: int = 0) -> Result:
    """One deployment's steps and log; from byte ``offset`` on, for a client that follows it."""
    deployment = session.db.deployment(deployment_id)
    if deployment is None:
        raise ConfigError(
            f"no deployment {deployment_id!r}",
            next_action="list deployments with `shiplane history`",
        )
    result = Result(command="logs", env=deployment["env"], deployment_id=deployment_id)
    path = Path(deployment["log_path"] or "")
    text = ""
    if path.is_file():
        with path.open("rb") as handle:
            handle.seek(max(offset, 0))
            raw = handle.read()
        text = raw.decode(errors="replace")
        offset = max(offset, 0) + len(raw)
    result.steps = [
        StepResult(s["name"], s["status"], s["duration_ms"] or 0, s["error"])
        for s in session.db.steps(deployment_id)
    ]
    result.data.update(
        deployment=_brief(deployment), log_path=str(path), log=text, next_offset=offset
    )
    return result


def promotions(db: Any, env: str | None, limit: int) -> list[dict[str, Any]]:
    """Recent promotions: who requested, who decided, and what became of them."""
    query = "SELECT * FROM promotions" + (" WHERE env = ?" if env else "")
    params: list[Any] = [env] if env else []
    rows = db.conn.execute(query + " ORDER BY requested_at DESC LIMIT ?", [*params, limit])
    return [dict(row) for row in rows]
