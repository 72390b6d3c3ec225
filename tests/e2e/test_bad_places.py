"""Bad places to run from: outside a git repository, and a migration with a syntax error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.app_repo import EXAMPLE, SHIPLANE, AppRepo


def test_not_a_git_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "shiplane.toml").write_text((EXAMPLE / "shiplane.toml").read_text())
    env = {**os.environ, "SHIPLANE_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [*SHIPLANE, "deploy", "dev", "--json"],
        cwd=plain,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 64
    assert "is not inside a git repository" in proc.stdout
    assert "git init" in proc.stdout
    assert not (tmp_path / "home").exists()


def test_migration_with_a_syntax_error(app_repo: AppRepo) -> None:
    config = app_repo.path / "shiplane.toml"  # a build that does not compile migrations
    config.write_text(
        config.read_text().replace("compileall -q app.py migrations", "compileall -q app.py")
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("broken migration", {"migrations/003_broken.py": "def up(db:\n    pass\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3
    assert "003_broken.py:1: syntax error" in run.data["error"]["message"]
    assert run.data["error"]["next_action"] == "fix 003_broken.py and commit it"
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]
    assert status["healthy"] and status["migrations"]["applied"] == [
        "001_create_notes",
        "002_add_tags",
    ]
