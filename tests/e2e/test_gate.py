"""Issue 13 in single-user mode: an agent (an agent token, no terminal, or a faked one) cannot
get past the gate by editing the working tree, faking a terminal or approving for itself;
each refusal is exit 6, leaves prod as it was, and is in history. A person with their factor
passes, and history names them. Real server, sockets and git."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import httpx

from tests.support.app_repo import SHIPLANE, AppRepo, Run
from tests.support.approvers import as_person, enroll


def _version(app_repo: AppRepo) -> str | None:
    try:
        return str(httpx.get(app_repo.url("prod", "/api/version"), timeout=5).json()["version"])
    except httpx.HTTPError:
        return None


def _edit(config: Path, old: str, new: str) -> None:
    text = config.read_text()
    assert old in text, old
    config.write_text(text.replace(old, new))


def test_an_agent_cannot_open_the_gate_a_person_with_a_factor_can(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    config = app_repo.path / "shiplane.toml"
    _edit(config, 'promote_from = "dev"', 'promote_from = "dev"\nrequires_approval = true')
    app_repo.commit("prod needs approval")
    person = app_repo.shiplane("tokens", "create", "--role", "person", "--label", "alice")
    assert person.code == 0, person.stdout
    as_alice = {"SHIPLANE_TOKEN": person.data["token"]}
    agent_token = app_repo.shiplane(
        "tokens", "create", "--role", "agent", "--label", "bot", extra_env=as_alice
    )
    assert agent_token.code == 0, agent_token.stdout
    agent = {"SHIPLANE_TOKEN": agent_token.data["token"], "SHIPLANE_ACTOR": "agent:bot"}
    alice = {**as_alice, **as_person(enroll(app_repo, tmp_path, extra_env=as_alice))}

    def as_agent(*args: str) -> Run:
        return app_repo.shiplane(*args, extra_env=agent)

    # The agent ships 1.1.0 to dev, verifies it and asks for prod: the first deploy pins
    # prod's protection; the promotion waits for a person.
    app_repo.git("checkout", "-q", "-B", "feature/one")
    app_repo.commit("1.1.0", {"VERSION": "1.1.0\n"})
    assert as_agent("deploy", "dev").code == 0
    assert as_agent("verify", "dev").code == 0
    pending = as_agent("promote", "prod")
    assert pending.code == 6 and pending.data["error"]["step"] == "approval", pending.stdout
    first = pending.data["promotion"]
    assert first["requested_by"] == "agent:bot"
    no_factor = app_repo.shiplane("approve", first["id"], extra_env=as_alice)
    assert no_factor.code == 6 and no_factor.data["error"]["step"] == "factor"
    assert "shiplane approve" in no_factor.data["error"]["next_action"]
    approved = app_repo.shiplane("approve", first["id"], extra_env=alice)
    assert approved.code == 0, approved.stdout
    assert approved.data["promotion"]["decided_by"] == "person:alice"
    assert _version(app_repo) == "1.1.0"
    prod_sha = app_repo.remote_branch("main")

    # 1.2.0: deployed to dev, never verified.
    app_repo.git("checkout", "-q", "-B", "feature/two")
    unverified = app_repo.commit("1.2.0", {"VERSION": "1.2.0\n"})
    assert as_agent("deploy", "dev").code == 0
    good = config.read_text()

    # Deleting promote_from in the working tree does not open prod: the pin keeps it gated.
    _edit(config, 'promote_from = "dev"\n', "")
    dropped = as_agent("deploy", "prod", "--ref", unverified)
    assert dropped.code == 6, dropped.stdout
    assert "shiplane promote prod" in dropped.data["error"]["next_action"]
    assert dropped.data["protection"] == "advisory"
    config.write_text(good)
    # Loosening requires_approval is refused, naming the change.
    _edit(config, "requires_approval = true", "requires_approval = false")
    loosened = as_agent("promote", "prod")
    assert loosened.code == 6 and loosened.data["error"]["step"] == "protect", loosened.stdout
    assert "requires_approval true -> false" in loosened.data["error"]["message"]
    assert "shiplane protect prod" in loosened.data["error"]["next_action"]
    config.write_text(good)
    # A faked terminal is not a person.
    faked = subprocess.run(
        ["script", "-qec", shlex.join([*SHIPLANE, "deploy", "prod", "--force", "--json"]),
         "/dev/null"],
        cwd=app_repo.path, env={**app_repo.env, **agent}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert faked.returncode == 6, faked.stdout + faked.stderr
    approve_own = as_agent("promote", "prod", "--approve")
    assert approve_own.code == 6 and approve_own.data["error"]["step"] == "policy"
    assert as_agent("verify", "dev").code == 0
    second = as_agent("promote", "prod").data["promotion"]
    self_approved = as_agent("approve", second["id"])
    assert self_approved.code == 6, self_approved.stdout
    # Even with a person's passphrase, an agent token decides nothing.
    stolen = app_repo.shiplane("approve", second["id"], extra_env={**alice, **agent})
    assert stolen.code == 6
    assert (_version(app_repo), app_repo.remote_branch("main")) == ("1.1.0", prod_sha)

    history = app_repo.shiplane("history", "prod", extra_env=as_alice)
    refusals = [e for e in history.data["gate_events"] if e["outcome"] == "refused"]
    assert {e["command"] for e in refusals} >= {"deploy", "promote", "approve"}
    by_agent = {e["command"] for e in refusals if e["actor"] == "agent:bot"}
    assert by_agent >= {"deploy", "promote", "approve"}
    assert any(e["detail"]["forced"] for e in refusals)

    # A person with the factor: approves, forces, confirms a loosening; history names them.
    ok = app_repo.shiplane("approve", second["id"], extra_env=alice)
    assert ok.code == 0, ok.stdout
    assert ok.data["promotion"]["decided_by"] == "person:alice"
    assert ok.data["promotion"]["requested_by"] == "agent:bot"
    assert _version(app_repo) == "1.2.0"
    _edit(config, "requires_approval = true", "requires_approval = false")
    protected = app_repo.shiplane("protect", "prod", extra_env=alice)
    assert protected.code == 0, protected.stdout
    assert protected.data["pinned"]["requires_approval"] is False

    # Rollback: the agent may go back to the release promoted before, code only...
    with_db = as_agent("rollback", "prod", "--restore-db")
    assert with_db.code == 6 and _version(app_repo) == "1.2.0"
    back = as_agent("rollback", "prod")
    assert back.code == 0, back.stdout
    assert _version(app_repo) == "1.1.0"
    # ...and a person forces a commit in, with the factor: recorded as forced, by them. The
    # commit is the one just rolled back, so even a person names that (issue 13, item 4).
    silent = app_repo.shiplane("deploy", "prod", "--force", "--ref", unverified, extra_env=alice)
    assert silent.code == 6 and "rolled back" in silent.data["error"]["message"], silent.stdout
    assert _version(app_repo) == "1.1.0"
    forced = app_repo.shiplane(
        "deploy", "prod", "--force", "--include-rolled-back", "--ref", unverified, extra_env=alice
    )
    assert forced.code == 0, forced.stdout
    assert _version(app_repo) == "1.2.0"
    latest = app_repo.shiplane("history", "prod", extra_env=as_alice).data
    top = latest["deployments"][0]
    assert (top["kind"], top["forced"], top["actor"]) == ("deploy", True, "person:alice")
    decided = [e for e in latest["gate_events"] if e["outcome"] == "decided"]
    assert {e["command"] for e in decided} >= {"approve", "protect", "deploy"}
    assert {e["actor"] for e in decided} == {"person:alice"}
    secret = alice["SHIPLANE_FACTOR"]
    for text in (latest, history.data, ok.stdout, forced.stdout):
        assert secret not in str(text)
