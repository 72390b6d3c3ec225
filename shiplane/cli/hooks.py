"""The hooks of the server's repository, so that ``git push shiplane <branch>`` deploys.

``pre-receive`` refuses a push to a gated env's branch (promotion is the only road there) and
to anything that is no env's branch; ``post-receive`` deploys every non-gated env on the pushed
branch through the server, like any other client, and prints its progress to the pusher (git
shows it as ``remote: ...``). Both read the server's copy of the app's config, as the last
client sent it (``shiplane.config.snapshot``; the repository is ``apps/<app>/repo.git``, the
copy ``apps/<app>/config``), never a file of a client's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from shiplane.caller import local_caller
from shiplane.cli.remote import run_in_server
from shiplane.config import snapshot
from shiplane.config.models import Environment
from shiplane.errors import ShiplaneError
from shiplane.gitops import server_repo

ZERO = "0" * 40
HEADS = "refs/heads/"
# What git sets for a hook that must not leak into the deploy (or a server it starts).
KEEP_GIT_VARS = ("GIT_AUTHOR_", "GIT_COMMITTER_")


def main() -> int:
    hook = sys.argv[1] if len(sys.argv) > 1 else ""
    updates = [tuple(line.split()) for line in sys.stdin.read().splitlines() if line.strip()]
    _scrub_git_environment()
    if all(update[2].startswith(f"{server_repo.INCOMING}/") for update in updates):
        return 0  # a client sending the commits of an operation
    try:
        environments = _environments(Path.cwd())
    except ShiplaneError as exc:
        _say(f"refused: {exc}")
        return 1
    if hook == "pre-receive":
        return pre_receive(environments, updates)
    if hook == "post-receive":
        return post_receive(environments, updates)
    _say(f"unknown hook {hook!r}")
    return 1


def pre_receive(environments: dict[str, Environment], updates: list[tuple[str, ...]]) -> int:
    for _old, new, ref in updates:
        if ref.startswith(f"{server_repo.INCOMING}/"):
            continue  # a client sending commits for an operation
        branch = ref.removeprefix(HEADS) if ref.startswith(HEADS) else None
        names = [name for name, env in environments.items() if env.branch == branch]
        gated = [name for name in names if environments[name].gated]
        if gated:
            _say(
                f"refused: {branch} is the branch of the gated environment {gated[0]}; new code "
                f"arrives there only by promotion: run `shiplane promote {gated[0]}`"
            )
            return 1
        if not names or new == ZERO:
            branches = sorted({env.branch for env in environments.values() if not env.gated})
            _say(f"refused: {ref} is no environment's branch; push one of: {', '.join(branches)}")
            return 1
    return 0


def post_receive(environments: dict[str, Environment], updates: list[tuple[str, ...]]) -> int:
    loaded = snapshot.load(_config_dir(Path.cwd()))
    failed = 0
    for _old, new, ref in updates:
        if not ref.startswith(HEADS) or new == ZERO:
            continue
        branch = ref.removeprefix(HEADS)
        for name, env in environments.items():
            if env.branch != branch or env.gated:
                continue
            _say(f"deploying {new[:7]} ({branch}) to {name}")
            payload = run_in_server(
                "deploy",
                local_caller(),
                loaded=loaded,
                progress=_progress,
                env=name,
                ref=branch,
                source={"sha": new, "ref": branch},
            )
            failed += not payload.get("ok")
            _say(_summary(name, payload))
    return 1 if failed else 0


def _config_dir(repo: Path) -> Path:
    """The server's copy of the app's config, beside its repository."""
    return repo.resolve().parent / "config"


def _environments(repo: Path) -> dict[str, Environment]:
    return dict(snapshot.load(_config_dir(repo)).config.environments)


def _summary(env: str, payload: dict[str, Any]) -> str:
    if payload.get("ok"):
        sha = str(payload.get("sha") or "")[:7]
        return f"{env} serves {sha} (release {payload.get('release')}) at {payload.get('url')}"
    error = payload.get("error") or {}
    return (
        f"deploy to {env} failed (exit {payload.get('exit_code')}) at "
        f"{error.get('step')}: {error.get('message')}; next: {error.get('next_action')}"
    )


def _progress(step: str, status: str) -> None:
    if status != "started":
        _say(f"  {status:<8} {step}")


def _say(line: str) -> None:
    sys.stderr.write(f"shiplane: {line}\n")
    sys.stderr.flush()


def _scrub_git_environment() -> None:
    for key in list(os.environ):
        if key.startswith("GIT_") and not key.startswith(KEEP_GIT_VARS):
            del os.environ[key]
