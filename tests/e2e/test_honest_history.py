"""History tells the truth: outcomes named as users think of them (aborted, rolled_back,
failed_critical), and an undo that failed stays failed, through a crash of the server and the
CLI, until a person resolves it (`shiplane recover --resolve ID`). Real server, real CLI, a
real failing undo (the server's repository made immutable under it)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.app_repo import SHIPLANE, AppRepo
from tests.support.faults import without_checks

BUILD = 'build = ["python -m compileall -q app.py migrations"]'


def failing_build(app_repo: AppRepo, seconds: int) -> None:
    """A build that runs ``seconds``, then fails (exit 1)."""
    config = app_repo.path / "shiplane.toml"
    slow = f"import time, sys; time.sleep({seconds}); sys.exit(1)"
    config.write_text(config.read_text().replace(BUILD, f"build = ['python -c \"{slow}\"']"))


def latest(app_repo: AppRepo) -> dict[str, Any]:
    deployments: list[dict[str, Any]] = app_repo.shiplane("history", "dev").data["deployments"]
    return deployments[0]


@contextmanager
def immutable(directory: Path) -> Iterator[None]:
    """Nobody, root included, may change ``directory``'s entries (chattr +i)."""
    subprocess.run(["chattr", "+i", str(directory)], check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True, timeout=30)


def test_outcomes_aborted_and_rolled_back(app_repo: AppRepo) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert latest(app_repo)["outcome"] == "succeeded"
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})

    smoke = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "smoke:fail"})
    assert smoke.code == 4, smoke.stdout
    assert latest(app_repo)["outcome"] == "rolled_back"  # it had switched

    failing_build(app_repo, 0)
    build = app_repo.shiplane("deploy", "dev")
    assert build.code == 2, build.stdout
    entry = latest(app_repo)
    assert entry["outcome"] == "aborted"  # nothing switched
    assert entry["id"] == build.data["deployment_id"]
    last = app_repo.shiplane("status", "dev").data["envs"]["dev"]["last_deployments"]
    assert [d["outcome"] for d in last] == ["aborted", "rolled_back", "succeeded"]


def test_a_failed_undo_survives_a_crash_until_a_person_resolves_it(app_repo: AppRepo) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "-b", "feature/x", "dev")
    app_repo.commit("feature", {"NOTE.txt": "feature\n"})
    failing_build(app_repo, 30)  # merged into dev, then the build is still running
    deploy = subprocess.Popen(
        [*SHIPLANE, "deploy", "dev", "--json"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    refs = app_repo.server_repo / "refs" / "heads"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            entry = latest(app_repo)
            if entry["status"] == "running" and entry["sha"]:
                break  # resolve is done: the feature is merged into the server's dev
            time.sleep(0.2)
        else:
            raise AssertionError("the deploy never got past resolve")
        deployment_id = entry["id"]
        with immutable(refs):
            # Server and CLI die together; the merge cannot be put back (undo fails).
            os.kill(int((app_repo.home / "server.pid").read_text()), signal.SIGKILL)
            deploy.kill()
            deploy.communicate(timeout=60)
            first = app_repo.shiplane("status", "dev")
            assert first.code == 0, first.stdout + first.stderr
            recovered = {r["deployment_id"]: r for r in first.data["recovered"]}
            assert recovered[deployment_id]["status"] == "undo_failed"
            assert "--resolve" in recovered[deployment_id]["next_action"]

            # The second command does not paper over it.
            second = app_repo.shiplane("status", "dev")
            assert second.code == 0 and not second.data["recovered"]
            entry = latest(app_repo)
            assert entry["id"] == deployment_id and entry["outcome"] == "failed_critical"
            logs = app_repo.shiplane("logs", deployment_id)
            assert {s["name"]: s["status"] for s in logs.data["steps"]}["resolve"] == (
                "undo_failed"
            )
            listed = app_repo.shiplane("recover")
            assert [u["deployment_id"] for u in listed.data["unresolved"]] == [deployment_id]
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.communicate(timeout=60)

    refused = app_repo.shiplane(
        "recover", "--resolve", deployment_id, extra_env={"SHIPLANE_ACTOR": "agent:bot"}
    )
    assert refused.code == 6, refused.stdout
    assert app_repo.shiplane("recover", "--resolve", "no-such-deployment").code == 64
    resolved = app_repo.shiplane("recover", "--resolve", deployment_id)
    assert resolved.code == 0, resolved.stdout
    assert resolved.data["resolved"]["steps"] == ["resolve"]
    assert not resolved.data["unresolved"]
    entry = latest(app_repo)
    assert entry["outcome"] == "failed_critical"  # what happened stays in the record
    assert entry["resolved_by"] == resolved.data["resolved"]["by"]
    assert entry["resolved_by"].startswith("person:")
