"""Commits as git bundles (enforced mode's road into the server's repository), with real git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shiplane.errors import GitError
from shiplane.gitops import bundles, server_repo
from shiplane.gitops.git import git
from tests.support.app_repo import GIT_ENV


def _repo(path: Path) -> Path:
    path.mkdir()
    env = {"PATH": "/usr/bin:/bin", **GIT_ENV}
    for argv in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "one"]):
        subprocess.run(["git", *argv], cwd=path, env=env, check=True, timeout=30)
    return path


def test_a_bundle_carries_the_shas_into_incoming_and_the_branches_back(tmp_path: Path) -> None:
    user = _repo(tmp_path / "user")
    sha = git(user, "rev-parse", "HEAD")
    server = server_repo.ensure(tmp_path / "repo.git")
    bundle = tmp_path / "send.bundle"
    bundles.create(user, [sha, sha], bundle)
    # The temporary names are gone from the user's repository.
    assert git(user, "for-each-ref", "refs/shiplane") == ""
    bundles.receive(server, bundle, [sha])
    assert git(server, "rev-parse", f"{server_repo.INCOMING}/{sha}") == sha

    back = tmp_path / "branches.bundle"
    assert not bundles.branches(server, back)  # no env branch yet
    git(server, "update-ref", "refs/heads/dev", sha)
    assert bundles.branches(server, back)
    bundles.fetch_branches(user, back)
    assert git(user, "rev-parse", "refs/remotes/shiplane/dev") == sha
    assert git(user, "rev-parse", "refs/heads/main") == sha  # the user's own branches stay


def test_receive_refuses_what_is_not_a_sha_or_not_in_the_bundle(tmp_path: Path) -> None:
    user = _repo(tmp_path / "user")
    sha = git(user, "rev-parse", "HEAD")
    server = server_repo.ensure(tmp_path / "repo.git")
    bundle = tmp_path / "send.bundle"
    bundles.create(user, [sha], bundle)
    with pytest.raises(GitError):
        bundles.receive(server, bundle, ["--upload-pack=touch /tmp/x"])
    with pytest.raises(GitError):
        bundles.receive(server, bundle, ["0" * 40])
    assert git(server, "for-each-ref", "refs/shiplane") == ""
