"""Which rolled-back commits a commit brings back, on a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shiplane.gitops import rolled_back

ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "PATH": "/usr/bin:/bin",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, name: str) -> str:
    (repo / name).write_text(name)
    git(repo, "add", name)
    git(repo, "commit", "-qm", name)
    return git(repo, "rev-parse", "HEAD")


def test_taken_out_rewind_and_revert(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "dev")
    base = commit(repo, "a")
    bad = commit(repo, "b")
    assert rolled_back.taken_out(repo, base, bad) == [bad]
    assert rolled_back.taken_out(repo, base, "0" * 40) == []
    assert rolled_back.rewind_branch(repo, "dev", bad, base)
    assert git(repo, "rev-parse", "dev") == base
    assert not rolled_back.rewind_branch(repo, "dev", bad, base)  # moved already: no-op

    git(repo, "checkout", "-q", "-b", "later", bad)
    later = commit(repo, "c")
    assert rolled_back.brought_back(repo, [bad], [later]) == [bad]
    assert rolled_back.brought_back(repo, [bad], [base]) == []
    git(repo, "revert", "--no-edit", bad)
    reverted = git(repo, "rev-parse", "HEAD")
    assert rolled_back.brought_back(repo, [bad], [reverted]) == []
