"""Code reaches the server by git: the server's own repository, `git push shiplane dev`, and
the user's branches left alone (real git, real server, real HTTP)."""

from __future__ import annotations

import subprocess

import httpx

from tests.support.app_repo import AppRepo


def served_sha(app_repo: AppRepo, env: str) -> str | None:
    try:
        return str(httpx.get(app_repo.url(env, "/_deploy/version"), timeout=5).json()["sha"])
    except httpx.HTTPError:
        return None


def server_git(app_repo: AppRepo, *args: str) -> str:
    return app_repo.git("--git-dir", str(app_repo.server_repo), *args)


def push(app_repo: AppRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "push", *args],
        cwd=app_repo.path,
        env=app_repo.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_deploy_merges_in_the_servers_repo_and_leaves_the_users_branches(
    app_repo: AppRepo,
) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    dev = app_repo.remote_branch("dev")
    assert dev is not None and dev == app_repo.git("rev-parse", "main")
    mode = app_repo.server_repo.stat().st_mode & 0o777
    assert mode == 0o700
    assert (app_repo.server_repo / "HEAD").is_file()

    # A feature branch that diverged from the server's dev: a real merge, made over there.
    app_repo.git("checkout", "-q", "-b", "feature/a")
    feature = app_repo.commit("feature a", {"A.txt": "a\n"})
    app_repo.git("checkout", "-q", "dev")
    on_dev = app_repo.commit("dev b", {"B.txt": "b\n"})
    assert app_repo.shiplane("deploy", "dev").code == 0  # on dev: dev itself, fast-forward
    assert app_repo.remote_branch("dev") == on_dev
    app_repo.git("checkout", "-q", "feature/a")
    branches = app_repo.local_branches()
    head = app_repo.git("symbolic-ref", "HEAD")

    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    merged = app_repo.remote_branch("dev")
    assert merged is not None and merged not in (feature, on_dev)
    assert app_repo.git("rev-parse", f"{merged}^1", f"{merged}^2").split() == [on_dev, feature]
    assert served_sha(app_repo, "dev") == merged == run.data["sha"]
    assert server_git(app_repo, "rev-parse", "refs/heads/dev") == merged
    # The user's repository: same branches at the same commits, same HEAD, clean tree.
    assert app_repo.local_branches() == branches
    assert app_repo.git("symbolic-ref", "HEAD") == head
    assert app_repo.git("status", "--porcelain") == ""

    # --ref deploys a commit as it is: no env branch moves.
    run = app_repo.shiplane("deploy", "dev", "--ref", on_dev)
    assert run.code == 0, run.stdout
    assert served_sha(app_repo, "dev") == on_dev
    assert app_repo.remote_branch("dev") == merged
    assert app_repo.local_branches() == branches


def test_git_push_shiplane_dev_deploys_and_main_is_refused(app_repo: AppRepo) -> None:
    added = app_repo.shiplane("remote", "add")
    assert added.code == 0, added.stdout + added.stderr
    assert added.data["url"] == str(app_repo.server_repo)
    assert app_repo.git("remote", "get-url", "shiplane") == str(app_repo.server_repo)

    app_repo.git("checkout", "-q", "dev")
    sha = app_repo.commit("notes 1.3.0", {"VERSION": "1.3.0\n"})
    pushed = push(app_repo, "shiplane", "dev")
    assert pushed.returncode == 0, pushed.stderr
    assert "remote: shiplane: deploying" in pushed.stderr
    assert f"remote: shiplane: dev serves {sha[:7]}" in pushed.stderr
    assert served_sha(app_repo, "dev") == sha
    version = httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()
    assert version == {"sha": sha, "version": "1.3.0"}
    assert app_repo.remote_branch("dev") == sha  # git's own tracking ref for the push
    history = app_repo.shiplane("history", "dev")
    assert history.data["deployments"][0]["sha"] == sha

    # main belongs to the gated prod: only `shiplane promote prod` moves it.
    app_repo.git("checkout", "-q", "main")
    refused = push(app_repo, "shiplane", "main")
    assert refused.returncode != 0
    assert "shiplane promote prod" in refused.stderr
    assert server_git(app_repo, "for-each-ref", "refs/heads/main") == ""
    assert served_sha(app_repo, "prod") is None

    # A feature that conflicts with the server's dev: exit 64, nothing changes anywhere.
    app_repo.git("checkout", "-q", "-b", "feature/x")
    app_repo.commit("feature edit", {"VERSION": "9.9.9-feature\n"})
    branches = app_repo.local_branches()
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 64, run.stdout
    assert "conflicts in: VERSION" in run.data["error"]["message"]
    assert server_git(app_repo, "rev-parse", "refs/heads/dev") == sha
    assert app_repo.remote_branch("dev") == sha
    assert app_repo.local_branches() == branches
    assert app_repo.git("status", "--porcelain") == ""
    assert served_sha(app_repo, "dev") == sha
