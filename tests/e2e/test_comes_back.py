"""Issue 14, the server comes back: a serving release whose directory was deleted is built
again from its commit when the server starts, so the environment serves after one command
instead of staying down. Real server, git, build and HTTP."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo


def _serving_sha(app_repo: AppRepo) -> str | None:
    try:
        answer = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=3)
    except httpx.HTTPError:
        return None
    return str(answer.json().get("sha")) if answer.status_code == 200 else None


def test_a_deleted_release_is_built_again_after_a_server_restart(app_repo: AppRepo) -> None:
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout
    release = app_repo.root / "dev" / "releases" / deployed.data["release"]
    assert release.is_dir()
    app_repo.stop_server()
    shutil.rmtree(release)

    status = app_repo.shiplane("status", "dev")  # finds no server: starts one, which restores
    assert status.code == 0, status.stdout
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _serving_sha(app_repo) != deployed.data["sha"]:
        time.sleep(0.3)
    assert _serving_sha(app_repo) == deployed.data["sha"]
    assert (release / "app.py").is_file() and not (release / ".shiplane-rebuilding").exists()
    # The build ran again (the example compiles its code).
    assert any(Path(release).rglob("*.pyc"))
    answer = httpx.get(app_repo.url("dev", "/api/notes"), timeout=5)
    assert answer.status_code == 200
