"""The server's own bare repository (``Layout.repo``) and how commits travel to and from it.

The server creates it (``ensure``, on a client's first request). Clients send the commits an
operation needs to ``refs/shiplane/incoming/<sha>`` (a local client: a plain ``git push`` to the
path; any client: a bundle over the control socket, ``shiplane.gitops.bundles``) and send the
shas with the request; the server merges,
fast-forwards and exports there, never in the user's repository. The env branches live there as
``refs/heads/<branch>``; after an operation the client fetches them back into the user's
repository as ``refs/remotes/shiplane/<branch>`` and never touches the user's own branches.

``git push shiplane <branch>`` reaches the same repository: its ``pre-receive`` hook refuses
pushes to a gated env's branch (promotion is the only road there), its ``post-receive`` hook
deploys every non-gated env on the pushed branch (``shiplane.cli.hooks``); both read the
server's copy of the app's config (``shiplane.config.snapshot``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from shiplane.errors import GitError
from shiplane.gitops.git import (
    branch_exists,
    current_branch,
    ensure_repo,
    git,
    repo_facts,
    resolve,
)

PUSH_TIMEOUT = 300
INCOMING = "refs/shiplane/incoming"
REMOTE_NAME = "shiplane"
HOOKS = ("pre-receive", "post-receive")


# Operations that may move an env branch: their result carries the branches for the client.
# A rollback moves it back (shiplane.pipeline.rolled_back).
MOVES_BRANCHES = frozenset({"deploy", "promote", "approve", "rollback"})


def ensure(repo: Path) -> Path:
    """Create the bare repository on first use (mode 0700) and keep its hooks current (the
    server's job). Requests racing to create it each build one aside and the first rename
    wins."""
    if not (repo / "HEAD").is_file():
        _create(repo)
    for hook in HOOKS:
        _write_if_changed(repo / "hooks" / hook, _hook_script(hook), 0o700)
    return repo


def _create(repo: Path) -> None:
    repo.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    aside = Path(tempfile.mkdtemp(prefix=".repo-", dir=repo.parent))
    try:
        git(aside, "init", "--quiet", "--bare")
        # Env branches only move forward (or by shiplane's own compare-and-swap), never away.
        git(aside, "config", "receive.denyNonFastForwards", "true")
        git(aside, "config", "receive.denyDeletes", "true")
        # Who shiplane's merge commits are by, whatever the host's git identity.
        git(aside, "config", "user.name", "shiplane")
        git(aside, "config", "user.email", "shiplane@localhost")
        aside.chmod(0o700)
        with contextlib.suppress(OSError):  # another client's repository is already there
            aside.rename(repo)
    finally:
        if aside.exists():
            shutil.rmtree(aside, ignore_errors=True)
    if not (repo / "HEAD").is_file():
        raise GitError(f"could not create the server's repository {repo}", step="send")


def _hook_script(hook: str) -> str:
    """A shell hook that hands the pushed refs to ``shiplane.cli.hooks``, except for a push of
    nothing but ``refs/shiplane/incoming/`` refs (a client sending commits), which it lets
    through without starting Python."""
    python = shlex.quote(sys.executable)
    entry = shlex.quote("from shiplane.cli.hooks import main; raise SystemExit(main())")
    return (
        "#!/bin/sh\n"
        "# Written by shiplane (rewritten when it changes).\n"
        "updates=$(cat)\n"
        f"printf '%s\\n' \"$updates\" | grep -qv ' {INCOMING}/' || exit 0\n"
        f"printf '%s\\n' \"$updates\" | exec {python} -c {entry} {hook}\n"
    )


def _write_if_changed(path: Path, text: str, mode: int) -> None:
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text)
        temporary.chmod(mode)
        temporary.replace(path)


@dataclass(frozen=True)
class SentSource:
    """What a deploy ships, resolved by the client in the user's repository: the commit
    (``sha``, already pushed), the ref it is reported as, and, when the env branch should take
    it, the name of the branch it comes from (``merge_from``) and the user's own env branch
    (``base``) for a server that has none yet."""

    sha: str
    ref: str
    merge_from: str | None = None
    base: str | None = None

    @property
    def shas(self) -> list[str]:
        return [sha for sha in (self.sha, self.base) if sha is not None]


class EnvBranch(Protocol):
    """What a deploy's source depends on in an environment's config (``config.models.Environment``
    has it; the CLI's short road builds it from the raw TOML, without Pydantic)."""

    @property
    def branch(self) -> str: ...

    @property
    def gated(self) -> bool: ...

    @property
    def auto_merge(self) -> bool: ...


def deploy_source(user_repo: Path, env_config: EnvBranch, ref: str | None) -> SentSource:
    """What ``shiplane deploy`` sends: ``--ref`` as it is (no branch moves); else the current
    branch merged into the env branch (auto_merge from a feature branch), or the user's env
    branch itself. A gated env's branch never moves on a deploy."""
    if ref is not None:
        return SentSource(sha=resolve(user_repo, ref), ref=ref)
    branch = env_config.branch
    if env_config.gated:
        return SentSource(sha=resolve(user_repo, branch), ref=branch)
    current = current_branch(user_repo)
    source = current if env_config.auto_merge and current and current != branch else branch
    base = (
        resolve(user_repo, branch)
        if source != branch and branch_exists(user_repo, branch)
        else None
    )
    return SentSource(sha=resolve(user_repo, source), ref=branch, merge_from=source, base=base)


def locate_source(
    repo_dir: Path, env_config: EnvBranch, ref: str | None
) -> tuple[Path, SentSource]:
    """The user's repository (its top) and ``deploy_source``'s answer, in one git process in
    every usual case; anything unusual (a missing branch, an unborn HEAD) takes the long way,
    which names what is wrong."""
    branch = env_config.branch
    facts = repo_facts(repo_dir, [ref if ref is not None else branch, "HEAD"])
    if facts is not None:
        sha, head = facts.commits
        if ref is not None:
            return facts.top, SentSource(sha=sha, ref=ref)
        if env_config.gated:
            return facts.top, SentSource(sha=sha, ref=branch)
        current = facts.current
        if env_config.auto_merge and current and current != branch:
            # A feature branch merged into the env branch: HEAD is that branch's tip.
            return facts.top, SentSource(sha=head, ref=branch, merge_from=current, base=sha)
        return facts.top, SentSource(sha=sha, ref=branch, merge_from=branch, base=None)
    top = ensure_repo(repo_dir)
    return top, deploy_source(top, env_config, ref)


def writable(repo: Path) -> bool:
    """Whether this user may push into the server's repository directly (single-user mode).
    os.access, not Path.is_file: on an enforced host the repository's directory is the server
    user's alone, and stat raises EACCES there (the answer is then "no")."""
    return os.access(repo / "HEAD", os.R_OK) and os.access(repo, os.W_OK | os.X_OK)


def push_commits(user_repo: Path, repo: Path, shas: list[str]) -> None:
    """Send ``shas`` (with their history) from the user's repository to the server's."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return
    # This runs on every deploy (the hop's budget is ~20 ms): a loose ref file answers without
    # a git process; what it does not find (packed refs) one git call lists for all.
    missing = [sha for sha in wanted if not (repo / INCOMING / sha).is_file()]
    if missing:
        listed = git(
            repo, "for-each-ref", "--format=%(refname)", *(f"{INCOMING}/{sha}" for sha in missing)
        )
        have = {ref.removeprefix(f"{INCOMING}/") for ref in listed.splitlines()}
        missing = [sha for sha in missing if sha not in have]
    if not missing:
        return
    specs = [f"{sha}:{INCOMING}/{sha}" for sha in missing]
    try:
        git(
            user_repo,
            "push",
            "--quiet",
            "--no-verify",
            str(repo),
            *specs,
            timeout=PUSH_TIMEOUT,
        )
    except GitError as exc:
        if all(has_incoming(repo, sha) for sha in missing):
            return  # another client sent the same commits at the same moment
        raise GitError(
            f"sending the commit to the shiplane server failed: {exc}",
            step="send",
            next_action=f"check that {repo} is reachable and writable",
        ) from exc


def has_incoming(repo: Path, sha: str) -> bool:
    return bool(git(repo, "rev-parse", "--verify", "--quiet", f"{INCOMING}/{sha}", check=False))


def fetch_back(user_repo: Path, repo: Path) -> str | None:
    """Bring the server's env branches into the user's repository as
    ``refs/remotes/shiplane/<branch>``; returns a warning instead of raising."""
    if not (repo / "HEAD").is_file():
        return None
    try:
        git(
            user_repo,
            "fetch",
            "--quiet",
            "--no-tags",
            "--prune",
            str(repo),
            f"+refs/heads/*:refs/remotes/{REMOTE_NAME}/*",
            timeout=PUSH_TIMEOUT,
        )
    except GitError as exc:
        return f"could not fetch the env branches back into refs/remotes/{REMOTE_NAME}/: {exc}"
    return None


def branches(repo: Path) -> dict[str, str]:
    """The server's env branches and their shas (none before the repository exists)."""
    if not (repo / "HEAD").is_file():
        return {}
    listed = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split(" ", 1) for line in listed.splitlines() if line)
