"""`shiplane maintenance ENV on|off` on a real repo, a real server and real HTTP: the page, what
stays answered, a deploy and a server restart under it, status, history, and who may."""

from __future__ import annotations

import os
import signal

import httpx

from tests.support.app_repo import AppRepo
from tests.support.wait import wait_for


def _get(app_repo: AppRepo, env: str, path: str) -> httpx.Response:
    return httpx.get(app_repo.url(env, path), timeout=5)


def _answers(app_repo: AppRepo, env: str) -> bool:
    try:
        return _get(app_repo, env, "/_deploy/version").status_code == 200
    except httpx.HTTPError:
        return False


def test_maintenance_survives_a_deploy_and_a_restart_and_off_restores(app_repo: AppRepo) -> None:
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout
    assert first.data["maintenance"] is False
    assert _get(app_repo, "dev", "/").status_code == 200

    on = app_repo.shiplane("maintenance", "dev", "on")
    assert on.code == 0, on.stdout
    assert on.data["command"] == "maintenance on"
    assert on.data["maintenance"]["on"] is True and on.data["changed"] is True
    assert on.data["front_door"] is True
    for path in ("/", "/api/notes", "/healthz"):
        page = _get(app_repo, "dev", path)
        assert page.status_code == 503, path
        assert page.headers["retry-after"] == "5" and "maintenance" in page.text
    # Health and version stay truthful: what runs behind the page.
    assert _get(app_repo, "dev", "/_deploy/health").status_code == 200
    version = _get(app_repo, "dev", "/_deploy/version").json()
    assert version["sha"] == first.data["sha"]
    # Another `on` changes nothing but is recorded.
    again = app_repo.shiplane("maintenance", "dev", "on")
    assert again.code == 0 and again.data["changed"] is False

    status = app_repo.shiplane("status", "dev")
    assert status.data["envs"]["dev"]["maintenance"]["on"] is True
    server = app_repo.shiplane("server", "status", "--json")
    assert server.data["envs"]["dev"]["front_door"]["maintenance"] is True

    # A deploy under maintenance: checked through the door (its checks pass the page), it
    # switches, says so, and the page stays.
    app_repo.git("checkout", "-q", "-B", "feature/two")
    sha = app_repo.commit("notes 1.1.0", {"VERSION": "1.1.0\n"})
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout
    assert deployed.data["maintenance"] is True
    steps = {s["name"]: s["status"] for s in deployed.data["steps"]}
    assert steps["smoke"] == "done"
    assert _get(app_repo, "dev", "/_deploy/version").json()["sha"] == sha
    assert _get(app_repo, "dev", "/").status_code == 503

    # A server restart opens the door in maintenance again.
    os.kill(int((app_repo.home / "server.pid").read_text()), signal.SIGKILL)
    assert app_repo.shiplane("server").code == 0
    assert wait_for(lambda: _answers(app_repo, "dev"), timeout=60)
    assert _get(app_repo, "dev", "/").status_code == 503

    off = app_repo.shiplane("maintenance", "dev", "off")
    assert off.code == 0, off.stdout
    assert off.data["maintenance"]["on"] is False and off.data["changed"] is True
    home = _get(app_repo, "dev", "/")
    assert home.status_code == 200 and "<h1>Notes</h1>" in home.text
    assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["maintenance"]["on"] is False

    history = app_repo.shiplane("history", "dev").data["maintenance"]
    assert [(h["env"], h["on"]) for h in history] == [("dev", False), ("dev", True), ("dev", True)]
    assert all(h["by"] and h["at"] for h in history)


def test_bad_input_and_an_agent_in_a_gated_env(app_repo: AppRepo) -> None:
    unknown = app_repo.shiplane("maintenance", "staging", "on")
    assert unknown.code == 64, unknown.stdout
    assert "'staging'" in unknown.data["error"]["message"]
    bad = app_repo.shiplane("maintenance", "dev", "maybe")
    assert bad.code == 64 and "on or off" in bad.data["error"]["message"]
    assert app_repo.shiplane("history", "dev").data.get("maintenance") == []

    # As on Heroku, turning the page on is a collaborator's action: an agent may, in prod
    # (gated) too. Nothing serves prod yet: the first deploy will open its door in this state.
    person = app_repo.shiplane("tokens", "create", "--role", "person", "--label", "alice")
    as_alice = {"SHIPLANE_TOKEN": person.data["token"]}
    token = app_repo.shiplane(
        "tokens", "create", "--role", "agent", "--label", "bot", extra_env=as_alice
    )
    agent = {"SHIPLANE_TOKEN": token.data["token"], "SHIPLANE_ACTOR": "agent:bot"}
    on = app_repo.shiplane("maintenance", "prod", "on", extra_env=agent)
    assert on.code == 0, on.stdout
    assert on.data["maintenance"]["by"] == "agent:bot" and on.data["front_door"] is False
    status = app_repo.shiplane("status", "prod", extra_env=agent)
    assert status.data["envs"]["prod"]["maintenance"]["on"] is True, status.stdout
    # ...while the same agent may not deploy there.
    assert app_repo.shiplane("deploy", "prod", extra_env=agent).code == 6
    off = app_repo.shiplane("maintenance", "prod", "off", extra_env=agent)
    assert off.code == 0 and off.data["maintenance"]["on"] is False
