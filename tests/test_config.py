"""shiplane.toml validation, and bad input through the real CLI: exit 64, one message, no change."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from shiplane.config import env_settings, load_config, parse_config
from shiplane.errors import ConfigError
from tests.conftest import AppRepo

GOOD = """
[app]
name = "demo"
run = "python -m http.server {port}"
[environments.dev]
branch = "dev"
port = 8001
"""


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = parse_config(GOOD, tmp_path / "shiplane.toml")
    assert config.app.health == "/healthz"
    assert config.health.interval == 1.0 and config.health.timeout == 30.0
    assert config.deploy.drain_timeout == 30.0
    assert config.environments["dev"].backup is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace('branch = "dev"', 'branch = "dev"\nbrnach = "x"'),
            "unknown key 'environments.dev.brnach'",
        ),
        (GOOD.replace("port = 8001", 'port = "eight"'), "environments.dev.port = 'eight'"),
        (GOOD.replace("port = 8001", "port = 70000"), "less than or equal to 65535"),
        (GOOD.replace('name = "demo"', 'name = "Bad Name"'), "app.name = 'Bad Name'"),
        (GOOD.replace('run = "python -m http.server {port}"', ""), "missing key 'app.run'"),
        (GOOD + '[database]\nurl = "mysql://x"\n', "database.url = 'mysql://x'"),
        (GOOD + '[environments.prod]\nbranch = "main"\nport = 8001\n', "also the port of"),
        ("[app\n", "not valid TOML"),
    ],
)
def test_bad_config_names_key_value_and_fix(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "shiplane.toml")
    assert expected in info.value.message
    assert info.value.exit_code == 64
    assert info.value.next_action


def test_missing_env_lists_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "shiplane.toml"
    path.write_text(GOOD)
    with pytest.raises(ConfigError, match=r"'staging' is not defined .* \(defined: dev\)"):
        env_settings(load_config(path), "staging")


def test_env_file_values_are_secrets(tmp_path: Path) -> None:
    path = tmp_path / "shiplane.toml"
    path.write_text(GOOD.replace("port = 8001", 'port = 8001\nenv_file = ".env"'))
    (tmp_path / ".env").write_text("# comment\nexport API_TOKEN='s3cr3t-value'\nPLAIN=ok\n")
    settings = env_settings(load_config(path), "dev")
    assert settings.secrets == {"API_TOKEN": "s3cr3t-value", "PLAIN": "ok"}
    redact = settings.redactor()
    assert (
        redact("token=s3cr3t-value url=postgresql://u:pw12@h/db")
        == "token=*** url=postgresql://u:***@h/db"
    )


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
    dev_before = app_repo.git("rev-parse", "dev")
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 64
    assert "conflicts in: VERSION" in run.data["error"]["message"]
    assert app_repo.git("rev-parse", "dev") == dev_before
    assert app_repo.git("status", "--porcelain") == ""
