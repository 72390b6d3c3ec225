"""Issue 14, output that never misleads: an agent that knows only the JSON runs feature -> dev
-> prod -> a migration -> rollback -> a bug fix. It types only the commands of its intent
(`deploy dev`, `promote prod`, `rollback prod`, each when what it wants is not done yet) and
otherwise runs exactly what each answer's ``next_actions`` / ``next_action`` says. No command
may be wasted: each exits 0, or the command its next action names comes next and succeeds;
and no next action ever names a command that fails. Real server, git, builds and HTTP."""

from __future__ import annotations

import shlex
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.app_repo import AppRepo, Run

PINNED = (
    "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;\n"
    "-- down\nALTER TABLE notes DROP COLUMN pinned;\n"
)
MAX_CHAIN = 8  # commands one intent may lead to; more is a loop in the advice


def next_commands(data: dict[str, Any]) -> list[list[str]]:
    """What the answer says to run next, as argument lists: its first next action (a list
    first, then the single one, then the error's), split on `&&`; a comment after `#` is
    dropped. Prose that is not a shiplane command gives nothing."""
    actions = data.get("next_actions") or []
    action = actions[0] if actions else data.get("next_action")
    if not action:
        action = (data.get("error") or {}).get("next_action")
    if not isinstance(action, str):
        return []
    commands = []
    for part in action.split("#", 1)[0].split("&&"):
        words = shlex.split(part)
        if not words or words[0] != "shiplane":
            return []  # prose: not a command an agent can run as is
        commands.append(words[1:])
    return commands


@dataclass
class Agent:
    app: AppRepo
    log: list[tuple[str, int, str]] = field(default_factory=list)  # (command, exit, why)

    def run(self, args: list[str], why: str) -> Run:
        done = self.app.shiplane(*args)
        self.log.append((" ".join(args), done.code, why))
        return done

    def intent(self, *args: str) -> None:
        """Type ``args``, then follow the advice until there is none."""
        pending = [list(args)]
        why = "intent"
        for _ in range(MAX_CHAIN):
            if not pending:
                return
            done = self.run(pending.pop(0), why)
            if pending:  # the rest of an `a && b` advice
                assert done.code == 0, self.report(done)
                why = "advised"
                continue
            pending = next_commands(done.data)
            if done.code != 0:
                assert pending, f"a failure with no command to fix it\n{self.report(done)}"
            why = "advised"
        raise AssertionError(f"the advice did not end after {MAX_CHAIN} commands\n{self.log}")

    def report(self, done: Run) -> str:
        return f"{self.log}\n{done.stdout}"

    def wasted(self) -> list[str]:
        """Commands that failed and were not followed by their own advice succeeding, and
        advised commands that failed."""
        bad = []
        for index, (command, code, why) in enumerate(self.log):
            if code == 0:
                continue
            if why == "advised":
                bad.append(f"advised `{command}` exited {code}")
                continue
            following = self.log[index + 1] if index + 1 < len(self.log) else None
            if following is None or following[2] != "advised" or following[1] != 0:
                bad.append(f"`{command}` exited {code} and its advice did not fix it")
        return bad


def _serving(app_repo: AppRepo, env: str) -> str:
    return str(httpx.get(app_repo.url(env, "/_deploy/version"), timeout=5).json()["sha"])


def _branch_from_dev(app_repo: AppRepo, name: str) -> None:
    """A new branch from what the server's dev holds (the client fetched it back)."""
    app_repo.git("checkout", "-q", "-b", name, "refs/remotes/shiplane/dev")


def test_an_agent_following_only_the_json_wastes_no_command(app_repo: AppRepo) -> None:
    agent = Agent(app_repo)

    # A feature, from dev to prod.
    app_repo.git("checkout", "-q", "-b", "feature/about")
    feature = app_repo.commit("feature: 1.1.0", {"VERSION": "1.1.0\n"})
    agent.intent("deploy", "dev")
    if _serving(app_repo, "prod") != _serving(app_repo, "dev"):
        agent.intent("promote", "prod")
    prod_feature = _serving(app_repo, "prod")
    assert prod_feature == _serving(app_repo, "dev")
    assert app_repo.git("merge-base", "--is-ancestor", feature, prod_feature) == ""

    # A migration, the same road.
    _branch_from_dev(app_repo, "feature/pinned")
    app_repo.commit("pinned notes", {"migrations/003_add_pinned.sql": PINNED})
    agent.intent("deploy", "dev")
    if _serving(app_repo, "prod") != _serving(app_repo, "dev"):
        agent.intent("promote", "prod")
    prod_db = app_repo.root / "prod" / "shared" / "notes.db"
    with sqlite3.connect(prod_db) as conn:
        assert "pinned" in {row[1] for row in conn.execute("PRAGMA table_info(notes)")}
    migrated = _serving(app_repo, "prod")
    assert migrated != prod_feature

    # Something is wrong with it in prod: back.
    agent.intent("rollback", "prod")
    assert _serving(app_repo, "prod") == prod_feature

    # The bug fixed on top of dev, then the road again (which brings the migration back).
    _branch_from_dev(app_repo, "fix/pinned")
    app_repo.commit("fix: 1.2.1", {"VERSION": "1.2.1\n"})
    agent.intent("deploy", "dev")
    if _serving(app_repo, "prod") != _serving(app_repo, "dev"):
        agent.intent("promote", "prod")
    assert _serving(app_repo, "prod") == _serving(app_repo, "dev") not in (migrated, prod_feature)
    assert httpx.get(app_repo.url("prod", "/api/notes"), timeout=5).status_code == 200

    print("\n".join(f"{code} {why:8} shiplane {command}" for command, code, why in agent.log))
    assert agent.wasted() == [], agent.log
    # Each intent was typed once, and `promote prod` never: a deploy's advice led to verify,
    # verify's to the promotion (with what it brings back, after the rollback).
    typed = [command for command, _, why in agent.log if why == "intent"]
    assert typed == ["deploy dev", "deploy dev", "rollback prod", "deploy dev"], agent.log
    assert len(agent.log) == 10, agent.log
