"""shiplane.toml validation: defaults, errors that name key, value and fix, env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.config import env_settings, load_config, parse_config
from shiplane.errors import ConfigError

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
