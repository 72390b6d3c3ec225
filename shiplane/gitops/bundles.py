"""Commits over the control socket: on an enforced host a client may not write the server's
repository (it is the server user's, 0700), so it sends a ``git bundle`` and the server fetches
from it; the env branches come back the same way.

A bundle carries refs, not bare shas: the client names each sha it sends under
``refs/shiplane/outgoing/<sha>`` for as long as writing the bundle takes, and the server fetches
those into ``refs/shiplane/incoming/<sha>``, where a single-user push would have put them.
"""

from __future__ import annotations

import re
from pathlib import Path

from shiplane.errors import GitError
from shiplane.gitops.git import git
from shiplane.gitops.server_repo import INCOMING, PUSH_TIMEOUT, REMOTE_NAME

OUTGOING = "refs/shiplane/outgoing"
SHA = re.compile(r"^[0-9a-f]{40}$")


def create(user_repo: Path, shas: list[str], bundle: Path) -> None:
    """Write ``shas`` (with their history) from the user's repository into ``bundle``."""
    wanted = list(dict.fromkeys(shas))
    for sha in wanted:
        git(user_repo, "update-ref", f"{OUTGOING}/{sha}", sha)
    try:
        git(
            user_repo,
            "bundle",
            "create",
            "--quiet",
            str(bundle),
            *(f"{OUTGOING}/{sha}" for sha in wanted),
            timeout=PUSH_TIMEOUT,
        )
    finally:
        for sha in wanted:
            git(user_repo, "update-ref", "-d", f"{OUTGOING}/{sha}", check=False)


def receive(repo: Path, bundle: Path, shas: list[str]) -> None:
    """Fetch ``shas`` from a client's ``bundle`` into ``refs/shiplane/incoming/`` of the
    server's repository; anything else the bundle holds is ignored."""
    bad = [sha for sha in shas if not SHA.match(sha)]
    if bad or not shas:
        raise GitError(f"not commit ids: {bad or 'none given'}", step="send")
    git(repo, "bundle", "verify", "--quiet", str(bundle), timeout=PUSH_TIMEOUT)
    git(
        repo,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        str(bundle),
        *(f"+{OUTGOING}/{sha}:{INCOMING}/{sha}" for sha in dict.fromkeys(shas)),
        timeout=PUSH_TIMEOUT,
    )
    for sha in shas:
        if git(repo, "rev-parse", "--verify", "--quiet", f"{INCOMING}/{sha}") != sha:
            raise GitError(f"the bundle did not carry {sha}", step="send")


def branches(repo: Path, bundle: Path) -> bool:
    """The server's env branches into ``bundle``; False when it has none yet."""
    if not git(repo, "for-each-ref", "--format=%(refname)", "refs/heads"):
        return False
    git(repo, "bundle", "create", "--quiet", str(bundle), "--branches", timeout=PUSH_TIMEOUT)
    return True


def fetch_branches(user_repo: Path, bundle: Path) -> None:
    """The branches of a server's ``bundle`` as ``refs/remotes/shiplane/*``."""
    git(
        user_repo,
        "fetch",
        "--quiet",
        "--no-tags",
        "--prune",
        "--no-write-fetch-head",
        str(bundle),
        f"+refs/heads/*:refs/remotes/{REMOTE_NAME}/*",
        timeout=PUSH_TIMEOUT,
    )
