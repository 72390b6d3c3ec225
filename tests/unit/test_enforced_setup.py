"""Enforced mode's pieces that need no root: the supervisor program, the group rules, and the
client's own token."""

from __future__ import annotations

import configparser
import os
import shutil
import sys
from pathlib import Path

import pytest

from shiplane.credentials import client_token, save_token
from shiplane.errors import ConfigError
from shiplane.hostconfig import HostConfig
from shiplane.hostinstall import InstallOptions, check_groups, supervisor_program
from shiplane.hostunits import systemd_unit, verify_unit


def _host(**overrides: str) -> HostConfig:
    values = {
        "home": "/var/lib/shiplane",
        "socket": "/run/shiplane/server.sock",
        "user": "shiplane",
        "group": "shiplane-clients",
        "apps_group": "shiplane-apps",
        **overrides,
    }
    return HostConfig.model_validate(values)


def test_the_supervisor_program_runs_the_enforced_server_as_root() -> None:
    options = InstallOptions(host=_host(), python=Path("/opt/shiplane/bin/python"))
    program = supervisor_program(options)
    lines = program.splitlines()
    assert lines[0] == "[program:shiplane]"
    assert "command=/opt/shiplane/bin/python -m shiplane server --foreground --enforced" in lines
    # No `user=`: the server forks its broker as root, then drops to its user itself.
    assert not any(line.startswith("user=") for line in lines)
    for setting in ("autorestart=true", "stopsignal=TERM", "stopwaitsecs=60"):
        assert setting in lines
    assert "stdout_logfile=/var/log/shiplane/server.log" in lines
    assert not any(line.startswith("environment=") for line in lines)  # /etc: nothing to say
    moved = supervisor_program(InstallOptions(host=_host(), etc=Path("/tmp/etc")))
    assert 'environment=SHIPLANE_ETC="/tmp/etc"' in moved.splitlines()


def _unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(text)
    return parser


def test_the_systemd_unit_runs_and_restarts_the_enforced_server_as_root() -> None:
    options = InstallOptions(host=_host(), python=Path("/opt/shiplane/bin/python"))
    unit = _unit(systemd_unit(options))
    service = unit["Service"]
    assert (
        service["ExecStart"]
        == "/opt/shiplane/bin/python -m shiplane server --foreground --enforced"
    )
    # Root on purpose, as under supervisor: the server drops to its user after the broker forks.
    assert service["User"] == "root"
    assert service["Restart"] == "always"
    assert service["KillMode"] == "mixed" and service["TimeoutStopSec"] == "60"
    assert service["StandardOutput"] == "append:/var/log/shiplane/server.log"
    assert "Environment" not in service
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    moved = _unit(systemd_unit(InstallOptions(host=_host(), etc=Path("/tmp/etc"))))
    assert moved["Service"]["Environment"] == '"SHIPLANE_ETC=/tmp/etc"'


def test_systemd_analyze_checks_the_unit_or_is_said_to_be_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit = tmp_path / "shiplane.service"
    unit.write_text(systemd_unit(InstallOptions(host=_host(), python=Path(sys.executable))))
    if shutil.which("systemd-analyze") is not None:
        assert verify_unit(unit) == "ok"
        broken = tmp_path / "broken.service"
        broken.write_text(unit.read_text().replace("Restart=always", "Restart=sometimes"))
        verdict = verify_unit(broken)
        assert verdict.startswith("failed: ") and "sometimes" in verdict
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert verify_unit(unit) == "skipped: systemd-analyze not found"


@pytest.mark.parametrize(
    "overrides",
    [{"group": "shiplane"}, {"group": "shiplane-apps"}, {"apps_group": "shiplane"}],
)
def test_the_clients_group_is_neither_the_servers_nor_the_apps(overrides: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        check_groups(_host(**overrides))
    assert caught.value.exit_code == 64 and caught.value.next_action
    check_groups(_host())  # the defaults are three names


def test_the_client_token_comes_from_the_environment_or_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("SHIPLANE_TOKEN", raising=False)
    assert client_token() is None
    path = save_token("shp_abc_secret")
    assert path == tmp_path / "shiplane" / "token"
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert client_token() == "shp_abc_secret"
    monkeypatch.setenv("SHIPLANE_TOKEN", "shp_env_wins")
    assert client_token() == "shp_env_wins"
    monkeypatch.delenv("SHIPLANE_TOKEN")
    os.chmod(path, 0o644)  # someone else could have read it (or written it)
    with pytest.raises(ConfigError) as caught:
        client_token()
    assert "0600" in caught.value.message and caught.value.step == "auth"
