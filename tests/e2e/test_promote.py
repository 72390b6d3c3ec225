"""The promotion gate and the approval flow, on a real repo, real server and real HTTP."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.app_repo import SHIPLANE, AppRepo, Run
from tests.support.approvers import as_person, enroll


def at_terminal(
    app_repo: AppRepo, *args: str, actor: str | None = None, env: dict[str, str] | None = None
) -> Run:
    """Run shiplane with a pseudo-terminal on stdin: which proves nothing about a person."""
    leader, follower = pty.openpty()
    env = {**app_repo.env, **(env or {})}
    if actor:
        env["SHIPLANE_ACTOR"] = actor
    try:
        proc = subprocess.run(
            [*SHIPLANE, *args, "--json"],
            cwd=app_repo.path,
            env=env,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        os.close(follower)
        os.close(leader)
    return Run(
        proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout, proc.stderr
    )


def deploy_feature(app_repo: AppRepo, version: str) -> str:
    app_repo.git("checkout", "-q", "-B", f"feature/{version}")
    sha = app_repo.commit(f"notes {version}", {"VERSION": f"{version}\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    return sha


def prod_version(app_repo: AppRepo) -> str | None:
    try:
        return httpx.get(app_repo.url("prod", "/api/version"), timeout=5).json()["version"]
    except httpx.HTTPError:
        return None


def test_gate_refusals_then_promotion(app_repo: AppRepo) -> None:
    refused = app_repo.shiplane("deploy", "prod")
    assert refused.code == 6 and refused.data["error"]["next_action"].endswith("promote prod")
    forced = app_repo.shiplane("deploy", "prod", "--force")  # no factor
    assert forced.code == 6 and "needs a factor" in forced.data["error"]["message"]

    sha = deploy_feature(app_repo, "1.1.0")
    unverified = app_repo.shiplane("promote", "prod")
    assert unverified.code == 6
    assert "never been verified" in unverified.data["error"]["message"]
    assert unverified.data["error"]["next_action"] == "shiplane verify dev"
    assert app_repo.remote_branch("main") != sha and prod_version(app_repo) is None

    # A failing verification does not open the gate either.
    config = app_repo.path / "shiplane.toml"
    good = config.read_text()
    config.write_text(good.replace("p95_ms = 2000", "p95_ms = 0.001"))
    assert app_repo.shiplane("verify", "dev").code == 1
    failed = app_repo.shiplane("promote", "prod")
    assert failed.code == 6 and "failed" in failed.data["error"]["message"]
    config.write_text(good)

    # Stale: verified, but longer ago than verify.max_age.
    config.write_text(good.replace("max_age = 3600", "max_age = 1"))
    assert app_repo.shiplane("verify", "dev").code == 0
    time.sleep(1.5)
    stale = app_repo.shiplane("promote", "prod")
    assert stale.code == 6 and "verify.max_age is 1s" in stale.data["error"]["message"]
    config.write_text(good)

    verified = app_repo.shiplane("verify", "dev")
    assert verified.code == 0
    main_before = app_repo.git("rev-parse", "main")
    run = app_repo.shiplane("promote", "prod")
    assert run.code == 0, run.stdout
    assert run.data["evidence"]["verification_id"] == verified.data["verification"]["id"]
    assert run.data["reused_build"] is True  # dev's release, copied, not rebuilt
    # The server's main moved (seen as shiplane/main); the user's own main did not.
    assert app_repo.remote_branch("main") == sha
    assert app_repo.git("rev-parse", "main") == main_before
    assert prod_version(app_repo) == "1.1.0"
    assert httpx.get(app_repo.url("prod", "/_deploy/version"), timeout=5).json()["sha"] == sha
    steps = {s["name"]: s for s in run.data["steps"]}
    assert steps["build"]["detail"].startswith("reused the build")
    assert steps["backup"]["status"] == "done"
    assert app_repo.shiplane("backups", "prod").data["backups"]
    # Checks never wrote to prod: the write checks were skipped there.
    assert httpx.get(app_repo.url("prod", "/api/notes"), timeout=5).json()["notes"] == []


def test_diverged_main_is_refused(app_repo: AppRepo) -> None:
    deploy_feature(app_repo, "1.1.0")
    assert app_repo.shiplane("verify", "dev").code == 0
    # The server's main has a commit the verified one lacks (git push cannot do that: the
    # pre-receive hook refuses pushes to a gated branch; a left-over ref can).
    app_repo.git("checkout", "-q", "main")
    hotfix = app_repo.commit("hotfix straight on main", {"HOTFIX": "1\n"})
    app_repo.git(
        "push", "-q", str(app_repo.server_repo), f"{hotfix}:refs/shiplane/incoming/{hotfix}"
    )
    app_repo.git("--git-dir", str(app_repo.server_repo), "update-ref", "refs/heads/main", hotfix)
    run = app_repo.shiplane("promote", "prod")
    assert run.code == 6
    assert "main has diverged" in run.data["error"]["message"]
    server_main = app_repo.git("--git-dir", str(app_repo.server_repo), "rev-parse", "main")
    assert server_main == hotfix  # nothing changed
    assert app_repo.git("rev-parse", "main") == hotfix
    assert prod_version(app_repo) is None


def test_approval_flow(app_repo: AppRepo, tmp_path: Path) -> None:
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            'promote_from = "dev"', 'promote_from = "dev"\nrequires_approval = true'
        )
    )
    deploy_feature(app_repo, "1.1.0")
    assert app_repo.shiplane("verify", "dev").code == 0

    pending = app_repo.shiplane("promote", "prod", extra_env={"SHIPLANE_ACTOR": "agent:claude"})
    assert pending.code == 6 and pending.data["error"]["step"] == "approval"
    promotion = pending.data["promotion"]
    assert promotion["status"] == "pending" and promotion["requested_by"] == "agent:claude"
    assert pending.data["evidence"]["verification_id"]
    assert prod_version(app_repo) is None

    no_factor = at_terminal(app_repo, "approve", promotion["id"], actor="person:alice")
    assert no_factor.code == 6 and "no approver is enrolled" in no_factor.data["error"]["message"]
    alice = as_person(enroll(app_repo, tmp_path))
    agent = at_terminal(app_repo, "approve", promotion["id"], actor="agent:claude", env=alice)
    assert agent.code == 6 and "agent" in agent.data["error"]["message"]
    assert prod_version(app_repo) is None
    wrong = {**alice, "SHIPLANE_FACTOR": "not the passphrase"}
    refused = app_repo.shiplane("approve", promotion["id"], extra_env=wrong)
    assert refused.code == 6 and refused.data["error"]["step"] == "factor"
    assert "--passphrase" in refused.data["error"]["next_action"]

    approved = app_repo.shiplane("approve", promotion["id"], extra_env=alice)
    assert approved.code == 0, approved.stdout
    assert approved.data["promotion"]["status"] == "done"
    assert approved.data["promotion"]["decided_by"] == "person:alice"
    assert prod_version(app_repo) == "1.1.0"
    again = app_repo.shiplane("approve", promotion["id"], extra_env=alice)
    assert again.code == 6 and "is done, not pending" in again.data["error"]["message"]

    # reject ends a pending promotion; it cannot be approved afterwards
    deploy_feature(app_repo, "1.2.0")
    assert app_repo.shiplane("verify", "dev").code == 0
    second = app_repo.shiplane("promote", "prod").data["promotion"]
    rejected = app_repo.shiplane("reject", second["id"])
    assert rejected.code == 0 and rejected.data["promotion"]["status"] == "rejected"
    late = app_repo.shiplane("approve", second["id"], extra_env=alice)
    assert late.code == 6
    assert prod_version(app_repo) == "1.1.0"

    # A person with their factor may request and approve in one go.
    direct = app_repo.shiplane("promote", "prod", "--approve", extra_env=alice)
    assert direct.code == 0, direct.stdout
    assert direct.data["promotion"]["decided_by"] == "person:alice"
    assert prod_version(app_repo) == "1.2.0"
