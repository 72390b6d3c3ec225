"""Bad input through the real CLI: exit 64, one message, no change."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.app_repo import AppRepo


def _snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize(
    ("case", "args"),
    [
        ("unknown key", ["deploy", "dev"]),
        ("wrong type", ["deploy", "dev"]),
        ("missing env", ["deploy", "staging"]),
        ("bad ref", ["deploy", "dev", "--ref", "no-such-branch"]),
        ("unreadable env file", ["deploy", "dev"]),
        ("usage", ["deploy"]),
    ],
)
def test_cli_bad_input_exit_64_nothing_changed(
    app_repo: AppRepo, case: str, args: list[str]
) -> None:
    config = app_repo.path / "shiplane.toml"
    text = config.read_text()
    if case == "unknown key":
        config.write_text(text.replace("[deploy]", "[deploy]\nreleases_keep = 3"))
    elif case == "wrong type":
        config.write_text(text.replace("releases_kept = 5", 'releases_kept = "five"'))
    elif case == "unreadable env file":
        config.write_text(
            text.replace("auto_merge = true", 'auto_merge = true\nenv_file = "missing.env"')
        )
    before = _snapshot(app_repo.home)
    branches = app_repo.git("branch", "--list")
    run = app_repo.shiplane(*args, "--json")
    assert run.code == 64, run.stdout + run.stderr
    assert run.data["ok"] is False
    assert run.data["error"]["message"] and run.data["error"]["next_action"]
    assert _snapshot(app_repo.home) == before
    assert app_repo.git("branch", "--list") == branches
    assert not (app_repo.root / "dev" / "releases").exists() or not any(
        (app_repo.root / "dev" / "releases").iterdir()
    )


def test_port_in_use_exit_64(app_repo: AppRepo) -> None:
    with socket.socket() as blocker:
        blocker.bind(("0.0.0.0", app_repo.ports["dev"]))
        blocker.listen()
        run = app_repo.shiplane("deploy", "dev")
    assert run.code == 64
    assert f"port = {app_repo.ports['dev']}" in run.data["error"]["message"]
    assert "in use" in run.data["error"]["message"]
    assert not any((app_repo.root / "dev" / "releases").iterdir())


def test_merge_conflict_is_clear_and_changes_nothing(app_repo: AppRepo) -> None:
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("dev edit", {"VERSION": "9.9.9-dev\n"})
    app_repo.git("checkout", "-q", "main")
    app_repo.git("checkout", "-qb", "feature/x")
    app_repo.commit("feature edit", {"VERSION": "9.9.9-feature\n"})
    branches = app_repo.local_branches()
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 64
    assert "conflicts in: VERSION" in run.data["error"]["message"]
    assert app_repo.local_branches() == branches
    assert app_repo.git("status", "--porcelain") == ""
    # Nor did the server's repository take a dev branch.
    assert app_repo.remote_branch("dev") is None
    assert not (app_repo.server_repo / "refs" / "heads" / "dev").exists()
