"""The role rules, cell by cell: every operation x gated or not x agent or person, the flags
only a person may pass, and the refusal's shape (exit 6, step "policy", role, operation, next
action). The callers come from real tokens in a real state.db."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shiplane import api, policy
from shiplane.caller import Caller, Role
from shiplane.errors import RefusedError
from shiplane.operations.registry import OPERATIONS
from shiplane.results import Result
from shiplane.state.db import StateDB
from shiplane.state.tokens import TokenStore

# What an agent may do: (in a non-gated env, in a gated env). Written out here, not derived from
# shiplane.policy, so that a change to the rules has to change this table too.
AGENT = {
    "status": (True, True),
    "history": (True, True),
    "logs": (True, True),
    "report": (True, True),
    "backups": (True, True),
    "migrate status": (True, True),
    "migrate lint": (True, True),
    "migrate rehearse": (True, True),
    "promote": (True, True),
    "recover": (True, True),
    "init": (True, True),
    "server start": (True, True),
    "server status": (True, True),
    "tokens list": (True, True),
    "env list": (True, True),
    "approvers list": (True, True),
    "challenge": (True, True),
    "maintenance on": (True, True),  # as on Heroku: a collaborator's action
    "maintenance off": (True, True),
    "notify test": (True, True),
    "deploy": (True, False),
    "verify": (True, False),
    "rollback": (True, False),
    "migrate up": (True, False),
    "migrate down": (True, False),
    "backup": (True, False),
    "restore": (True, False),
    "env set": (True, False),
    "env unset": (True, False),
    "restart": (True, False),
    "scale": (True, False),
    "run": (True, False),
    "approve": (False, False),
    "reject": (False, False),
    "protect": (False, False),
    "server stop": (False, False),
    "tokens create": (False, False),
    "tokens revoke": (False, False),
    "approvers add": (False, False),
    "approvers remove": (False, False),
    "state restore": (False, False),
    "recover resolve": (False, False),
    "no such operation": (False, False),
}
ALLOWED_FLAGS_OPERATIONS = [("rollback", "--to"), ("migrate up", "--dry-run")]


@pytest.fixture(scope="module")
def callers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Role, Caller]]:
    db = StateDB(Path(tmp_path_factory.mktemp("policy")) / "state.db")
    store = TokenStore(db)
    made: dict[Role, Caller] = {}
    try:
        for role in ("agent", "person"):
            _id, plaintext = store.create(role, None)
            record = store.verify(plaintext)
            assert record is not None
            # The label claims the other role; the token decides.
            made[role] = Caller.from_token(record, "person:x" if role == "agent" else "agent:x")
        yield made
    finally:
        db.close()


@pytest.mark.parametrize("gated", [False, True], ids=["open", "gated"])
@pytest.mark.parametrize("operation", sorted(AGENT))
def test_agent_matrix(callers: dict[Role, Caller], operation: str, gated: bool) -> None:
    allowed = AGENT[operation][gated]
    if allowed:
        policy.check_allowed(callers["agent"], operation, gated, env="prod")
        return
    with pytest.raises(RefusedError) as refused:
        policy.check_allowed(callers["agent"], operation, gated, env="prod")
    error = refused.value
    assert error.exit_code == 6 and error.step == "policy"
    assert "agent" in error.message and operation in error.message
    assert callers["agent"].label in error.message  # who was refused, as recorded
    assert error.next_action


@pytest.mark.parametrize("gated", [False, True], ids=["open", "gated"])
@pytest.mark.parametrize("operation", sorted(AGENT))
@pytest.mark.parametrize("flags", [(), ("--force",), ("--approve",), ("--discard-writes",)])
def test_a_person_may_do_everything(
    callers: dict[Role, Caller], operation: str, gated: bool, flags: tuple[str, ...]
) -> None:
    policy.check_allowed(callers["person"], operation, gated, flags=flags)


@pytest.mark.parametrize("gated", [False, True], ids=["open", "gated"])
@pytest.mark.parametrize("flag", ["--force", "--approve", "--discard-writes"])
@pytest.mark.parametrize("operation", ["deploy", "promote", "restore", "rollback"])
def test_person_flags_are_refused_to_an_agent(
    callers: dict[Role, Caller], operation: str, flag: str, gated: bool
) -> None:
    with pytest.raises(RefusedError) as refused:
        policy.check_allowed(callers["agent"], operation, gated, flags=[flag], env="dev")
    assert refused.value.step == "policy"
    assert flag in refused.value.message and operation in refused.value.message


@pytest.mark.parametrize(("operation", "flag"), ALLOWED_FLAGS_OPERATIONS)
def test_other_flags_do_not_matter(callers: dict[Role, Caller], operation: str, flag: str) -> None:
    policy.check_allowed(callers["agent"], operation, False, flags=[flag])


def test_next_actions_point_somewhere_useful(callers: dict[Role, Caller]) -> None:
    agent = callers["agent"]
    with pytest.raises(RefusedError) as deploy:
        policy.check_allowed(agent, "deploy", True, env="prod")
    assert deploy.value.next_action is not None
    assert deploy.value.next_action.startswith("shiplane promote prod")
    with pytest.raises(RefusedError) as approve:
        policy.check_allowed(agent, "promote", True, flags=["--approve"], env="prod")
    assert "without --approve" in (approve.value.next_action or "")
    with pytest.raises(RefusedError) as migrate:
        policy.check_allowed(agent, "migrate down", True, env="prod")
    assert "`shiplane migrate prod down`" in (migrate.value.next_action or "")
    with pytest.raises(RefusedError) as tokens:
        policy.check_allowed(agent, "tokens create", False)
    assert "shiplane tokens create" in (tokens.value.next_action or "")


def test_the_rules_know_every_api_operation() -> None:
    """A new api operation must get a rule (or be knowingly a person's): the table and this
    test change together."""
    commands = {name.replace("_", " ") for name in OPERATIONS} | {"init", "server"}
    known = {op.split(" ")[0] for op in policy.KNOWN_OPERATIONS} | policy.KNOWN_OPERATIONS
    assert commands <= known, commands - known
    assert set(AGENT) - {"no such operation"} == set(policy.KNOWN_OPERATIONS)


@pytest.mark.parametrize("operation", ["tokens create", "tokens revoke"])
def test_api_refuses_token_changes_to_an_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """The api checks the rule before it opens the root: exit 6, no token, nothing written."""
    home = tmp_path / "home"
    monkeypatch.setenv("SHIPLANE_HOME", str(home))
    config = tmp_path / "shiplane.toml"
    config.write_text(
        '[app]\nname = "x"\nrun = "true"\n\n[environments.dev]\nbranch = "dev"\nport = 8001\n'
    )
    agent = Caller.from_actor("agent:bot")
    result: Result = (
        api.tokens_create(agent, "person", config_path=config)
        if operation == "tokens create"
        else api.tokens_revoke(agent, "abc", config_path=config)
    )
    assert result.exit_code == 6, result.to_dict()
    assert result.error is not None and result.error["step"] == "policy"
    assert "token" not in result.data
    assert not home.exists()


def test_an_agent_may_roll_a_gated_env_back_code_only(callers: dict[Role, Caller]) -> None:
    """Issue 13 item 8: back to the release promoted before is the safe direction; --to and
    --restore-db in a gated env stay a person's."""
    agent = callers["agent"]
    policy.check_allowed(agent, "rollback", True, env="prod", code_only_rollback=True)
    with pytest.raises(RefusedError):
        policy.check_allowed(agent, "rollback", True, env="prod", code_only_rollback=False)
    with pytest.raises(RefusedError):
        policy.check_allowed(
            agent, "rollback", True, flags=["--restore-db"], env="prod", code_only_rollback=True
        )
