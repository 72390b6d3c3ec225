"""The server's env branches into the user's repository as ``refs/remotes/shiplane/*`` after
an operation that moves them (``server_repo.MOVES_BRANCHES``), for both roads of the CLI: the
full client (``shiplane.cli.remote``) and the stdlib one (``shiplane.cli.fast_client``). Plain
git processes only: no Pydantic, no HTTP client (the fetch of missing commits is the caller's,
given as ``fetch_objects``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from shiplane.errors import ShiplaneError
from shiplane.gitops import bundles, server_repo
from shiplane.gitops.git import ensure_repo, git

PREFIX = f"refs/remotes/{server_repo.REMOTE_NAME}/"


def remote_refs(user_repo: Path) -> dict[str, str]:
    """The user's ``refs/remotes/shiplane/*``: the server's branches as last fetched back."""
    listed = git(user_repo, "for-each-ref", "--format=%(refname) %(objectname)", PREFIX)
    return {
        ref.removeprefix(PREFIX): sha
        for ref, _, sha in (line.partition(" ") for line in listed.splitlines() if line)
        if ref != f"{PREFIX}HEAD"
    }


def fetch_back(
    repo_dir: Path,
    branches: dict[str, str],
    fetch_objects: Callable[[Path], None],
    known_refs: dict[str, str] | None = None,
) -> str | None:
    """``branches`` into the repository at ``repo_dir``: nothing to do when they already match
    (the usual redeploy), a ref update when the commits are here (the client just sent them),
    ``fetch_objects(user_repo)`` first otherwise (a bundle for a remote server). A failure is a
    warning: the operation itself is done."""
    if known_refs == branches:
        return None  # the usual redeploy: not even a git process
    try:
        user_repo = ensure_repo(repo_dir)
        known = remote_refs(user_repo) if known_refs is None else known_refs
        if known == branches:
            return None
        if bundles.present(user_repo, list(branches.values())) != set(branches.values()):
            fetch_objects(user_repo)
        commands = [f"update {PREFIX}{b} {sha}\n" for b, sha in sorted(branches.items())]
        commands += [f"delete {PREFIX}{b}\n" for b in sorted(set(known) - set(branches))]
        bundles.update_refs(user_repo, "".join(commands))
    except ShiplaneError as exc:
        return f"could not fetch the env branches back into {PREFIX}: {exc.message}"
    return None
