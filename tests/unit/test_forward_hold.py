"""Which forward migrations hold, and the `--hold-timeout` and `database.hold` inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.config import parse_config
from shiplane.errors import ConfigError
from shiplane.migrate.lint import Finding
from shiplane.operations.registry import check_hold_timeout
from shiplane.pipeline.forward_hold import breaking

GOOD = """
[app]
name = "demo"
run = "python -m http.server {port}"
[database]
url = "sqlite:///demo.db"
hold = true
[environments.dev]
branch = "dev"
port = 8001
[environments.prod]
branch = "main"
port = 8000
database = { hold = false }
"""


def test_breaking_findings_are_the_unannotated_incompatible_ones() -> None:
    findings = [
        Finding("003_a", "rename", "renames a table or column", False),
        Finding("003_a", "non-transactional", "cannot run inside a transaction", False),
        Finding("004_b", "drop-column", "drops a column", True),  # the contract half
        Finding("005_c", "not-null-without-default", "adds a NOT NULL column", False),
    ]
    assert [f.migration for f in breaking(findings)] == ["003_a", "005_c"]


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan"), "10", True])
def test_a_bad_hold_timeout_names_the_option(value: object) -> None:
    with pytest.raises(ConfigError, match="--hold-timeout") as raised:
        check_hold_timeout(value)
    assert raised.value.exit_code == 64 and "--hold-timeout 60" in str(raised.value.next_action)


def test_a_good_hold_timeout_passes() -> None:
    check_hold_timeout(None)
    check_hold_timeout(2.5)
    check_hold_timeout(30)


def test_database_hold_and_its_per_env_override(tmp_path: Path) -> None:
    config = parse_config(GOOD, tmp_path / "shiplane.toml")
    assert config.database.hold is True
    assert config.environments["dev"].database.hold is None  # inherits
    assert config.environments["prod"].database.hold is False
    with pytest.raises(ConfigError, match=r"database\.hold"):
        parse_config(GOOD.replace("hold = true", 'hold = "yes"'), tmp_path / "shiplane.toml")
