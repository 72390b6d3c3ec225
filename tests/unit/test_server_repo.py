"""The server's repository on real git, without a server: creation, what a deploy sends,
merges there, the hooks' refusals."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shiplane import gitops
from shiplane.cli import hooks
from shiplane.config.models import Environment
from shiplane.errors import GitError
from shiplane.gitops import server_repo

IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def _identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in IDENTITY.items():
        monkeypatch.setenv(key, value)


def run_git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return proc.stdout.strip()


def commit(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", f"{name}: {text.strip()}")
    return run_git(repo, "rev-parse", "HEAD")


@pytest.fixture
def user_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "app"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    commit(repo, "VERSION", "1\n")
    run_git(repo, "branch", "dev")
    return repo


def dev(**extra: object) -> Environment:
    return Environment.model_validate({"branch": "dev", "port": 8001, **extra})


def test_ensure_creates_a_private_bare_repo_with_hooks(tmp_path: Path) -> None:
    repo = server_repo.ensure(tmp_path / "root" / "repo.git")
    assert (repo / "HEAD").is_file() and run_git(repo, "rev-parse", "--is-bare-repository")
    assert repo.stat().st_mode & 0o777 == 0o700
    for hook in server_repo.HOOKS:
        assert os.access(repo / "hooks" / hook, os.X_OK)
    assert server_repo.branches(repo) == {}
    assert server_repo.ensure(repo) == repo  # idempotent


def test_deploy_source_from_a_feature_branch_and_from_the_env_branch(user_repo: Path) -> None:
    main = run_git(user_repo, "rev-parse", "main")
    run_git(user_repo, "checkout", "-qb", "feature/x")
    feature = commit(user_repo, "A", "a\n")
    sent = server_repo.deploy_source(user_repo, dev(auto_merge=True), None)
    assert sent == server_repo.SentSource(feature, "dev", merge_from="feature/x", base=main)
    # Without auto_merge, or on the env branch: the user's env branch itself.
    assert server_repo.deploy_source(user_repo, dev(), None).merge_from == "dev"
    # --ref: the commit as it is, no branch to move.
    assert server_repo.deploy_source(user_repo, dev(), "main") == server_repo.SentSource(
        main, "main"
    )
    with pytest.raises(GitError):
        server_repo.deploy_source(user_repo, dev(), "no-such-ref")


def test_merge_in_the_server_repo_seeds_from_base_and_conflicts_change_nothing(
    user_repo: Path, tmp_path: Path
) -> None:
    repo = server_repo.ensure(tmp_path / "repo.git")
    run_git(user_repo, "checkout", "-q", "dev")
    on_dev = commit(user_repo, "VERSION", "dev\n")
    run_git(user_repo, "checkout", "-q", "-b", "feature/y", "main")
    feature = commit(user_repo, "VERSION", "feature\n")
    server_repo.push_commits(user_repo, repo, [feature, on_dev])
    with pytest.raises(GitError, match="conflicts in: VERSION"):
        gitops.merge_into(repo, feature, "feature/y", "dev", base=on_dev)
    assert gitops.branch_sha(repo, "dev") is None  # nothing was created

    merged = gitops.merge_into(repo, on_dev, "dev", "dev")
    assert (merged.kind, merged.after) == ("created", on_dev)
    run_git(user_repo, "checkout", "-q", "-b", "feature/z", "main")
    other = commit(user_repo, "OTHER", "z\n")
    server_repo.push_commits(user_repo, repo, [other])
    merged = gitops.merge_into(repo, other, "feature/z", "dev")
    assert merged.kind == "merge" and gitops.branch_sha(repo, "dev") == merged.after
    # The user's repository: its branches are where they were.
    assert run_git(user_repo, "rev-parse", "dev") == on_dev

    assert server_repo.fetch_back(user_repo, repo) is None
    assert run_git(user_repo, "rev-parse", "refs/remotes/shiplane/dev") == merged.after


def test_pre_receive_refuses_gated_and_unknown_branches(capsys: pytest.CaptureFixture[str]) -> None:
    envs = {
        "dev": dev(),
        "prod": Environment.model_validate({"branch": "main", "port": 8000, "promote_from": "dev"}),
    }
    new, zero = "1" * 40, hooks.ZERO
    assert hooks.pre_receive(envs, [(zero, new, "refs/heads/dev")]) == 0
    assert hooks.pre_receive(envs, [(zero, new, "refs/shiplane/incoming/x")]) == 0
    assert hooks.pre_receive(envs, [(zero, new, "refs/heads/main")]) == 1
    assert "run `shiplane promote prod`" in capsys.readouterr().err
    assert hooks.pre_receive(envs, [(zero, new, "refs/heads/other")]) == 1
    assert "push one of: dev" in capsys.readouterr().err
    assert hooks.pre_receive(envs, [(new, zero, "refs/heads/dev")]) == 1


@pytest.mark.parametrize(
    ("checkout", "env_kwargs", "ref"),
    [
        ("dev", {}, None),  # the env branch itself
        ("feature", {"auto_merge": True}, None),  # a feature branch merged in
        ("feature", {}, None),  # a feature branch, no auto_merge: the env branch ships
        ("feature", {"promote_from": "dev"}, None),  # gated: the branch as it is
        ("feature", {"auto_merge": True}, "main"),  # --ref wins
        ("detached", {"auto_merge": True}, None),  # no current branch
        ("feature", {"auto_merge": True, "branch": "missing"}, None),  # long way: no branch
    ],
)
def test_locate_source_answers_as_deploy_source(
    user_repo: Path, checkout: str, env_kwargs: dict[str, object], ref: str | None
) -> None:
    """The client's one-process fast path gives what the step-by-step resolution gives."""
    run_git(user_repo, "checkout", "-q", "-b", "feature")
    commit(user_repo, "feature.txt", "new\n")
    if checkout == "detached":
        run_git(user_repo, "checkout", "-q", "--detach", "HEAD")
    else:
        run_git(user_repo, "checkout", "-q", checkout)
    env = Environment.model_validate({"branch": "dev", "port": 8001, **env_kwargs})
    top, located = server_repo.locate_source(user_repo / ".", env, ref)
    assert top == user_repo
    assert located == server_repo.deploy_source(user_repo, env, ref)
