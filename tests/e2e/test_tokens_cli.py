"""`shiplane tokens` and roles through the real CLI and server: a token is printed once and
stored hashed; once a host has tokens every request needs one, and its role (never the label)
decides what the caller may do; no client credential reaches what the server starts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from shiplane.state.db import StateDB
from shiplane.state.tokens import TokenStore
from tests.support.app_repo import AppRepo

PERSON = {"SHIPLANE_ACTOR": "person:tester"}
AGENT = {"SHIPLANE_ACTOR": "agent:bot"}


def bootstrap(app_repo: AppRepo) -> tuple[str, str]:
    """The first token is made without one (single-user mode); from then on tokens rule."""
    person = app_repo.shiplane("tokens", "create", "--role", "person", extra_env=PERSON)
    assert person.code == 0, person.stdout + person.stderr
    as_person = {"SHIPLANE_TOKEN": person.data["token"], **PERSON}
    agent = app_repo.shiplane("tokens", "create", "--role", "agent", extra_env=as_person)
    assert agent.code == 0, agent.stdout
    return person.data["token"], agent.data["token"]


def test_create_list_revoke(app_repo: AppRepo) -> None:
    person_token, _ = bootstrap(app_repo)
    as_person = {"SHIPLANE_TOKEN": person_token}
    created = app_repo.shiplane(
        "tokens", "create", "--role", "agent", "--label", "ci-bot", extra_env=as_person
    )
    assert created.code == 0, created.stdout + created.stderr
    token = created.data["token"]
    assert token.startswith(f"shp_{created.data['id']}_")
    assert (created.data["role"], created.data["label"]) == ("agent", "ci-bot")
    assert created.stdout.count(token) == 1 and token not in created.stderr
    secret = token.split("_", 2)[2]

    listed = app_repo.shiplane("tokens", "list", extra_env={"SHIPLANE_TOKEN": token})
    assert listed.code == 0, listed.stdout
    assert secret not in listed.stdout + listed.stderr
    assert (created.data["id"], "agent", False) in [
        (t["id"], t["role"], t["revoked"]) for t in listed.data["tokens"]
    ]

    db = StateDB(app_repo.home / "host.db")
    try:
        record = TokenStore(db).verify(token)
        assert record is not None and record.role == "agent"
        revoked = app_repo.shiplane("tokens", "revoke", created.data["id"], extra_env=as_person)
        assert revoked.code == 0, revoked.stdout
        assert secret not in revoked.stdout
        assert TokenStore(db).verify(token) is None
    finally:
        db.close()
    files = [f for f in app_repo.home.iterdir() if f.name.startswith("host.db")]  # + WAL
    assert files and all(secret.encode() not in f.read_bytes() for f in files)
    gone = app_repo.shiplane("status", extra_env={"SHIPLANE_TOKEN": token})
    assert gone.code == 6 and gone.data["error"]["step"] == "auth"


def test_once_tokens_exist_a_request_without_one_is_refused(app_repo: AppRepo) -> None:
    bootstrap(app_repo)
    for extra, step in ((AGENT, "policy"), (PERSON, "auth"), ({}, "auth")):
        run = app_repo.shiplane("tokens", "create", "--role", "person", extra_env=extra)
        assert run.code == 6 and run.data["error"]["step"] == step, run.stdout
        assert "token" not in run.data
    assert app_repo.shiplane("deploy", "dev", extra_env=PERSON).code == 6
    assert not (app_repo.root / "dev" / "releases").exists()


def test_an_agent_cannot_create_or_revoke_tokens(app_repo: AppRepo) -> None:
    person_token, agent_token = bootstrap(app_repo)
    as_agent = {"SHIPLANE_TOKEN": agent_token, **AGENT}
    listed = app_repo.shiplane("tokens", "list", extra_env=as_agent)
    for args in (
        ("tokens", "create", "--role", "person", "--label", "person:me"),
        ("tokens", "revoke", listed.data["tokens"][0]["id"]),
    ):
        run = app_repo.shiplane(*args, extra_env=as_agent)
        assert run.code == 6, run.stdout + run.stderr
        assert run.data["error"]["step"] == "policy"
        assert "agent" in run.data["error"]["message"]
        assert run.data["error"]["next_action"]
        assert "token" not in run.data
    after = app_repo.shiplane("tokens", "list", extra_env={"SHIPLANE_TOKEN": person_token})
    assert [t["revoked"] for t in after.data["tokens"]] == [False, False]  # nothing changed
    # Stopping the server stops every app: not an agent's call either.
    stop = app_repo.shiplane("server", "stop", extra_env=as_agent)
    assert stop.code == 6 and stop.data["error"]["step"] == "policy"
    assert app_repo.shiplane("status", extra_env=as_agent).data["server"]["running"]


def test_a_token_sets_the_role_whatever_the_label_claims(app_repo: AppRepo) -> None:
    person_token, agent_token = bootstrap(app_repo)
    # An agent's token, with a label that claims to be a person: still an agent.
    as_agent = {"SHIPLANE_TOKEN": agent_token, "SHIPLANE_ACTOR": "person:alice"}
    assert app_repo.shiplane("deploy", "dev", extra_env=as_agent).code == 0  # not gated: allowed
    history = app_repo.shiplane("history", "dev", extra_env=as_agent).data["deployments"]
    refused = app_repo.shiplane("backup", "prod", extra_env=as_agent)
    assert refused.code == 6 and refused.data["error"]["step"] == "policy", refused.stdout
    assert "agent" in refused.data["error"]["message"]
    assert app_repo.shiplane("tokens", "create", "--role", "agent", extra_env=as_agent).code == 6
    restore_db = app_repo.shiplane("rollback", "dev", "--restore-db", extra_env=as_agent)
    assert restore_db.code == 6 and "--restore-db" in restore_db.data["error"]["message"]
    # The same request with a person's token passes the role rules.
    as_person = {"SHIPLANE_TOKEN": person_token, "SHIPLANE_ACTOR": "agent:bot"}
    allowed = app_repo.shiplane("backups", "prod", extra_env=as_person)
    assert allowed.code == 0, allowed.stdout
    # A token that is not one is refused before anything runs.
    bogus = app_repo.shiplane("status", extra_env={"SHIPLANE_TOKEN": "shp_nope_nope"})
    assert bogus.code == 6 and bogus.data["error"]["step"] == "auth"
    assert "shp_nope_nope" not in bogus.stdout
    # The deployment records who really asked: the token's role, the label's name.
    assert history and history[0]["status"] == "succeeded"
    assert history[0]["actor"] == "agent:alice"


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_no_client_credential_reaches_the_server_or_the_app(app_repo: AppRepo) -> None:
    person_token, agent_token = bootstrap(app_repo)
    app_repo.stop_server()
    # The server is started by a client that holds a person's token...
    as_person = {"SHIPLANE_TOKEN": person_token, "SHIPLANE_ACTOR": "person:ana"}
    assert app_repo.shiplane("status", extra_env=as_person).code == 0
    # ...and an agent's build writes out its whole environment.
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            'build = ["python -m compileall -q app.py migrations"]',
            'build = ["python -m compileall -q app.py migrations", '
            "\"python -c \\\"import os, pathlib; pathlib.Path('build.env').write_text(repr(dict("
            'os.environ)))\\""]',
        )
    )
    app_repo.commit("build that dumps its environment")
    deployed = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_TOKEN": agent_token})
    assert deployed.code == 0, deployed.stdout
    build_env = next((app_repo.root / "dev" / "releases").glob("*/build.env")).read_text()
    server_pid = int((app_repo.home / "server.pid").read_text())
    instances = app_repo.shiplane("server", "status", extra_env=as_person).data["envs"]["dev"]
    app_pid = instances["instances"][0]["pid"]
    for secret in (person_token, agent_token):
        assert secret not in build_env
        assert secret.encode() not in _environ(server_pid)
        assert secret.encode() not in _environ(app_pid)
    assert "SHIPLANE_ACTOR" not in build_env


def test_a_stopped_server_is_not_replaced(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    pid = int((app_repo.home / "server.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        run = app_repo.shiplane("status", timeout=120)
        assert run.code == 7, run.stdout
        assert "answer" in run.data["error"]["message"]
        assert time.monotonic() - started < 60
        assert int((app_repo.home / "server.pid").read_text()) == pid  # no second server
    finally:
        os.kill(pid, signal.SIGCONT)
    after = app_repo.shiplane("status", "dev")
    assert after.code == 0 and after.data["envs"]["dev"]["healthy"]
    assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).status_code == 200
