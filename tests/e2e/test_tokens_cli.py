"""`shiplane tokens` through the real CLI: the token is printed once, listed never, refused once
revoked, and an agent caller cannot mint or revoke one (exit 6)."""

from __future__ import annotations

from shiplane.state.db import StateDB
from shiplane.state.tokens import TokenStore
from tests.support.app_repo import AppRepo

PERSON = {"SHIPLANE_ACTOR": "person:tester"}
AGENT = {"SHIPLANE_ACTOR": "agent:bot"}


def test_create_list_revoke(app_repo: AppRepo) -> None:
    created = app_repo.shiplane(
        "tokens", "create", "--role", "agent", "--label", "ci-bot", extra_env=PERSON
    )
    assert created.code == 0, created.stdout + created.stderr
    token = created.data["token"]
    assert token.startswith(f"shp_{created.data['id']}_")
    assert (created.data["role"], created.data["label"]) == ("agent", "ci-bot")
    assert created.stdout.count(token) == 1 and token not in created.stderr
    secret = token.split("_", 2)[2]

    listed = app_repo.shiplane("tokens", "list", extra_env=AGENT)
    assert listed.code == 0, listed.stdout
    assert secret not in listed.stdout + listed.stderr
    assert [(t["id"], t["role"], t["revoked"]) for t in listed.data["tokens"]] == [
        (created.data["id"], "agent", False)
    ]

    db = StateDB(app_repo.home / "host.db")
    try:
        record = TokenStore(db).verify(token)
        assert record is not None and record.role == "agent"
        revoked = app_repo.shiplane("tokens", "revoke", created.data["id"], extra_env=PERSON)
        assert revoked.code == 0, revoked.stdout
        assert secret not in revoked.stdout
        assert TokenStore(db).verify(token) is None
    finally:
        db.close()
    files = [f for f in app_repo.home.iterdir() if f.name.startswith("host.db")]  # + WAL
    assert files and all(secret.encode() not in f.read_bytes() for f in files)

    again = app_repo.shiplane("tokens", "list")
    assert again.data["tokens"][0]["revoked"] is True


def test_an_agent_cannot_create_or_revoke_tokens(app_repo: AppRepo) -> None:
    made = app_repo.shiplane("tokens", "create", "--role", "agent", extra_env=PERSON)
    assert made.code == 0, made.stdout
    for args in (
        ("tokens", "create", "--role", "person", "--label", "person:me"),
        ("tokens", "revoke", made.data["id"]),
    ):
        run = app_repo.shiplane(*args, extra_env=AGENT)
        assert run.code == 6, run.stdout + run.stderr
        assert run.data["error"]["step"] == "policy"
        assert "agent" in run.data["error"]["message"]
        assert run.data["error"]["next_action"]
        assert "token" not in run.data
    listed = app_repo.shiplane("tokens", "list", extra_env=PERSON)
    assert [t["revoked"] for t in listed.data["tokens"]] == [False]  # nothing changed


def test_a_token_sets_the_role_whatever_the_label_claims(app_repo: AppRepo) -> None:
    made = app_repo.shiplane("tokens", "create", "--role", "agent", extra_env=PERSON)
    person = app_repo.shiplane("tokens", "create", "--role", "person", extra_env=PERSON)
    agent_token, person_token = made.data["token"], person.data["token"]
    # An agent's token, with a label that claims to be a person: still an agent.
    as_agent = {"SHIPLANE_TOKEN": agent_token, "SHIPLANE_ACTOR": "person:alice"}
    assert app_repo.shiplane("deploy", "dev", extra_env=as_agent).code == 0  # not gated: allowed
    history = app_repo.shiplane("history", "dev", extra_env=as_agent).data["deployments"]
    refused = app_repo.shiplane("backup", "prod", extra_env=as_agent)
    assert refused.code == 6 and refused.data["error"]["step"] == "policy", refused.stdout
    assert "agent" in refused.data["error"]["message"]
    assert app_repo.shiplane("tokens", "create", "--role", "agent", extra_env=as_agent).code == 6
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
