"""Concurrency: five deploys to one environment at once, and two environments in parallel."""

from __future__ import annotations

import json
import re
import subprocess

import httpx

from tests.support.app_repo import SHIPLANE, AppRepo, free_port


def start(app_repo: AppRepo, env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SHIPLANE, "deploy", env, "--json"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, dict]:
    out, _ = proc.communicate(timeout=240)
    return proc.returncode, json.loads(out)


def test_five_deploys_at_once_exactly_one_runs(app_repo: AppRepo) -> None:
    app_repo.slow_build()
    procs = [start(app_repo, "dev") for _ in range(5)]
    results = [finish(p) for p in procs]
    winners = [data for code, data in results if code == 0]
    refused = [data for code, data in results if code == 6]
    odd = [(code, data.get("error")) for code, data in results if code not in (0, 6)]
    assert len(winners) == 1 and len(refused) == 4, odd
    holder = winners[0]["deployment_id"]
    for data in refused:
        assert data["error"]["step"] == "lock"
        assert re.search(rf"locked by deployment {holder}\b", data["error"]["message"])
    history = app_repo.shiplane("history", "dev").data["deployments"]
    assert [d["status"] for d in history].count("succeeded") == 1
    assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["lock"] is None


def test_two_environments_deploy_in_parallel(app_repo: AppRepo) -> None:
    app_repo.slow_build()
    staging_port = free_port()
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text() + f'\n[environments.staging]\nbranch = "dev"\nport = {staging_port}\n'
    )
    app_repo.ports["staging"] = staging_port
    procs = [start(app_repo, "dev"), start(app_repo, "staging")]
    results = [finish(p) for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    starts = [next(s for s in data["steps"] if s["name"] == "build") for _, data in results]
    assert all(s["duration_ms"] >= 3000 for s in starts)
    for env in ("dev", "staging"):
        assert httpx.get(app_repo.url(env, "/api/notes"), timeout=5).status_code == 200
    # Separate databases: a note in dev is not in staging.
    httpx.post(app_repo.url("dev", "/api/notes"), json={"title": "only dev"}, timeout=5)
    staging = httpx.get(app_repo.url("staging", "/api/notes"), timeout=5).json()["notes"]
    assert all(n["title"] != "only dev" for n in staging)
