"""Whether a deploy or promotion would change anything. The same commit, with the same
config, env file and kept variables as what serves now, on an instance that is up, is a no-op
(``already_serving``, exit 0): an agent that repeats a command learns that nothing happened
instead of paying for a second release. ``--redeploy`` ships it anyway.

The fingerprint is stored with a deploy's or promotion's ``record`` step (a rollback stores
none: the next deploy after one always runs)."""

from __future__ import annotations

from typing import Any

from shiplane.config.fingerprint import fingerprint
from shiplane.gitops.git import branch_sha, is_ancestor
from shiplane.operations.session import Session
from shiplane.operations.settings import settings_for
from shiplane.results import Result


def effective_sha(session: Session, env: str, source: dict[str, Any]) -> str | None:
    """The commit a deploy of ``source`` would serve, when it can be known without merging:
    the source itself, or (auto_merge from another branch) what serves when that already
    contains the source and is the env branch's tip. None: it would make a new commit."""
    sha = str(source["sha"])
    if not source.get("merge_from"):
        return sha
    state = session.db.env_state(env)
    served = str(state["sha"]) if state else None
    if served is None or sha == served:
        return served
    branch = session.loaded.config.environments[env].branch
    repo = session.layout.repo
    if branch_sha(repo, branch) != served or not is_ancestor(repo, sha, served):
        return None
    return served


def check(session: Session, env: str, sha: str | None) -> dict[str, Any] | None:
    """The env's serving state when a deploy of ``sha`` would change nothing."""
    if sha is None:
        return None
    settings = settings_for(session.loaded, session.db, env)
    return already_serving(session, env, fingerprint(session.loaded, settings, sha))


def already_serving(session: Session, env: str, print_: str) -> dict[str, Any] | None:
    """The env's serving state when it serves exactly ``print_`` on a live instance."""
    state = session.db.env_state(env)
    if not state or not state.get("deployment_id"):
        return None
    steps = session.db.steps(str(state["deployment_id"]))
    record: dict[str, Any] = next((s["data"] for s in steps if s["name"] == "record"), {})
    if record.get("fingerprint") != print_:
        return None
    up = [
        i
        for i in session.target.instances(env)
        if i.id == state.get("instance_id") and not i.exited and i.state == "running"
    ]
    return state if up else None


def no_op(command: str, env: str, state: dict[str, Any], url: str) -> Result:
    result = Result(command=command, env=env)
    result.data.update(
        already_serving=True,
        sha=state["sha"],
        release=state["release"],
        url=url,
        detail=f"{env} already serves {str(state['sha'])[:7]} (release {state['release']}) with"
        " this config: nothing to do",
        next_actions=[f"shiplane {command} {env} --redeploy (ships it again anyway)"],
    )
    return result
