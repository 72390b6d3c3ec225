"""The enforced-mode marker: strict, every error names the key, the value and the fix; the
layout and the mode follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane import policy, protection
from shiplane.errors import ConfigError
from shiplane.hostconfig import HostConfig, load_host_config, marker_path
from shiplane.layout import Layout, ServerLayout, shiplane_home

GOOD = (
    'home = "/var/lib/shiplane"\nsocket = "/run/shiplane/server.sock"\n'
    'user = "shiplane"\ngroup = "shiplane"\napps_group = "shiplane-apps"\n'
)


def _marker(etc: Path, text: str) -> None:
    marker_path(etc).parent.mkdir(parents=True, exist_ok=True)
    marker_path(etc).write_text(text)


def test_no_marker_is_single_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPLANE_ETC", str(tmp_path))
    monkeypatch.setenv("SHIPLANE_HOME", str(tmp_path / "home"))
    assert load_host_config() is None
    assert shiplane_home() == tmp_path / "home"
    assert ServerLayout.default().socket == tmp_path / "home" / "server.sock"
    assert protection.mode_of(ServerLayout.default()) == "single-user"
    assert protection.marks(ServerLayout.default())["protection"] == "advisory"


def test_the_marker_names_home_and_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPLANE_ETC", str(tmp_path))
    monkeypatch.setenv("SHIPLANE_HOME", str(tmp_path / "ignored"))
    _marker(tmp_path, GOOD)
    host = load_host_config()
    assert host == HostConfig.model_validate(
        {
            "home": "/var/lib/shiplane",
            "socket": "/run/shiplane/server.sock",
            "user": "shiplane",
            "group": "shiplane",
            "apps_group": "shiplane-apps",
        }
    )
    # The marker wins over $SHIPLANE_HOME: clients and the server agree on the one server.
    assert shiplane_home() == Path("/var/lib/shiplane")
    layout = ServerLayout.default()
    assert (layout.root, layout.socket) == (
        Path("/var/lib/shiplane"),
        Path("/run/shiplane/server.sock"),
    )
    assert layout.token == Path("/var/lib/shiplane/server.token")
    assert Layout.for_app("notes").server.socket == Path("/run/shiplane/server.sock")
    # A home the marker does not name keeps its socket inside.
    assert ServerLayout.for_home(tmp_path).socket == tmp_path / "server.sock"
    # No such user here / home not owned by it: not enforced, whatever the marker says.
    assert protection.mode_of(layout) == "single-user"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (GOOD.replace('"/var/lib/shiplane"', '"var/lib"'), "home = 'var/lib'"),
        (GOOD.replace('user = "shiplane"', 'user = "Root Me"'), "user = 'Root Me'"),
        (GOOD.replace('user = "shiplane"\n', ""), "user = '(missing)'"),
        (GOOD.replace('group = "shiplane"', "group = 7"), "group = 7"),
        (GOOD + 'extra = "x"\n', "extra = 'x': unknown key"),
        ("home = [", "not valid TOML"),
    ],
)
def test_a_bad_marker_is_an_error_naming_key_and_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, named: str
) -> None:
    monkeypatch.setenv("SHIPLANE_ETC", str(tmp_path))
    _marker(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_host_config()
    assert named in caught.value.message
    assert str(marker_path(tmp_path)) in caught.value.message
    assert caught.value.next_action
    assert caught.value.exit_code == 64


def test_to_toml_round_trips(tmp_path: Path) -> None:
    host = HostConfig.model_validate(
        {
            "home": "/srv/sl",
            "socket": "/run/sl/s.sock",
            "user": "sl1",
            "group": "sg1",
            "apps_group": "sa1",
        }
    )
    _marker(tmp_path, host.to_toml())
    assert load_host_config(tmp_path) == host


@pytest.mark.parametrize(
    ("operation", "gated", "flags", "expected"),
    [
        ("deploy", True, (), True),
        ("deploy", False, (), False),
        ("deploy", False, ("--force",), True),
        ("promote", True, (), True),
        ("rollback", True, (), True),
        ("approve", False, (), True),
        ("tokens create", False, (), True),
        ("status", True, (), False),
        ("verify", False, (), False),
    ],
)
def test_which_operations_the_gate_or_the_rules_decide(
    operation: str, gated: bool, flags: tuple[str, ...], expected: bool
) -> None:
    assert policy.gated_operation(operation, gated, flags=flags) is expected
