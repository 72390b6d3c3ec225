"""The server owns the deploy: the CLI is only a client, so killing it stops nothing, and the
log can be followed again from anywhere."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx

from tests.support.app_repo import SHIPLANE, AppRepo


def test_killing_the_cli_does_not_stop_the_deploy(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "dev")
    new_sha = app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    app_repo.slow_build(3)
    client = subprocess.Popen(
        [*SHIPLANE, "deploy", "dev", "--json"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deployment_id = None
    deadline = time.monotonic() + 30
    while deployment_id is None and time.monotonic() < deadline:
        latest = app_repo.shiplane("history", "dev", "--limit", "1").data["deployments"][0]
        if latest["status"] == "running":
            deployment_id = latest["id"]
        time.sleep(0.1)
    assert deployment_id is not None, "the deploy never started"
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=10)

    followed = app_repo.shiplane("logs", "--deployment", deployment_id, "--follow", timeout=120)
    assert followed.code == 0, followed.stdout + followed.stderr
    # The log streamed to stderr up to the end of the deploy, which the dead client never saw.
    assert "== build" in followed.stderr and "== prune" in followed.stderr
    assert followed.data["deployment"]["status"] == "succeeded"
    assert [s["name"] for s in followed.data["steps"]][-1] == "prune"
    version = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()
    assert version["sha"] == new_sha and version["deployment_id"] == deployment_id


def test_follow_of_a_finished_deployment_returns_at_once(app_repo: AppRepo) -> None:
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0
    started = time.monotonic()
    followed = app_repo.shiplane("logs", run.data["deployment_id"], "--follow")
    assert followed.code == 0 and time.monotonic() - started < 20
    assert "== switch" in followed.stderr and followed.data["log"].count("== switch") == 1
    missing = app_repo.shiplane("logs", "--deployment", "dev-nope", "--follow")
    assert missing.code == 64 and "no deployment 'dev-nope'" in missing.data["error"]["message"]


def _raw(app_repo: AppRepo, name: str, body: object) -> tuple[int, list[dict]]:
    """A request straight on the control socket, as a hostile local client would send it."""
    import json

    token = (app_repo.home / "server.token").read_text()
    transport = httpx.HTTPTransport(uds=str(app_repo.home / "server.sock"))
    with httpx.Client(transport=transport, base_url="http://x", timeout=60) as client:
        response = client.post(
            f"/ops/{name}", content=json.dumps(body), headers={"x-shiplane-token": token}
        )
    events = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    return response.status_code, events


def test_malformed_operation_requests_are_refused(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    path = app_repo.path / "shiplane.toml"
    config = {"path": str(path), "text": path.read_text(), "files": {}}
    person = {"role": "person", "label": "person:x"}

    def result(name: str, body: object) -> dict:
        status, events = _raw(app_repo, name, body)
        assert status == 200 and events[-1]["event"] == "result", events
        return events[-1]["result"]

    unknown = result("history", {"caller": person, "args": {"bogus": 1}, "config": config})
    assert unknown["exit_code"] == 64 and "bogus" in unknown["error"]["message"]
    reserved = result("status", {"caller": person, "args": {"token": "x"}, "config": config})
    assert reserved["exit_code"] == 64 and "reserved" in reserved["error"]["message"]
    god = result("status", {"caller": {"role": "god", "label": "x"}, "config": config})
    assert god["exit_code"] == 64
    nowhere = result("status", {"caller": person})
    assert nowhere["exit_code"] == 64  # no config: never the server's own directory
    # A path instead of the config: the server never reads a client's file.
    by_path = result("status", {"caller": person, "config_path": str(path)})
    assert by_path["exit_code"] == 64 and "config" in by_path["error"]["message"]
    assert result("nope", {"caller": person, "config": config})["exit_code"] == 64
    huge, _ = _raw(app_repo, "status", {"caller": person, "pad": "x" * 600_000})
    assert huge == 413
    # Nothing above crashed or wedged the server, and nothing was left running.
    after = app_repo.shiplane("status", "dev")
    assert after.code == 0 and after.data["envs"]["dev"]["lock"] is None
    assert not (app_repo.home / "crash.log").exists()
