"""What a rollback took out of an environment's history, in the server's repository, and
whether a commit brings it back.

A rollback from ``left`` to ``target`` takes out every commit of ``target..left`` (the
commits, merges included, that ``left`` had and ``target`` lacks) and moves the env branch
back to ``target`` when it still points at ``left``. A commit brings one of them back when it
has it among its ancestors, unless its history also holds a ``git revert`` of it (the
message git writes: "This reverts commit <sha>.").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from shiplane.gitops.git import branch_sha, git, is_ancestor

REVERTS = re.compile(r"This reverts commit ([0-9a-f]{40})")


def taken_out(repo: Path, target: str, left: str) -> list[str]:
    """The commits ``left`` has and ``target`` lacks, oldest first ([] when either is not in
    the repository: nothing to say about history we do not have)."""
    return git(repo, "rev-list", "--reverse", f"{target}..{left}", check=False).split()


def rewind_branch(repo: Path, branch: str, left: str, target: str) -> bool:
    """Move ``branch`` from ``left`` back to ``target`` (compare-and-swap): only when it still
    points at what was rolled back and goes back along its own history. True when it moved."""
    if branch_sha(repo, branch) != left or not is_ancestor(repo, target, left):
        return False
    git(repo, "update-ref", f"refs/heads/{branch}", target, left, check=False)
    return branch_sha(repo, branch) == target


def brought_back(repo: Path, rolled_back: Iterable[str], commits: Iterable[str]) -> list[str]:
    """Which ``rolled_back`` shas one of ``commits`` has among its ancestors (itself
    included) without a revert of it in the same history."""
    heads = [c for c in dict.fromkeys(commits) if c]
    found = [
        sha for sha in dict.fromkeys(rolled_back) if any(is_ancestor(repo, sha, c) for c in heads)
    ]
    if not found:
        return []
    reverted = _reverted(repo, heads)
    return [sha for sha in found if sha not in reverted]


def _reverted(repo: Path, heads: list[str]) -> set[str]:
    messages = git(
        repo, "log", "--format=%B", "--grep=This reverts commit", *heads, "--", check=False
    )
    return set(REVERTS.findall(messages))
