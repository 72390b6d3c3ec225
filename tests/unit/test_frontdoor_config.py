"""Front-door settings in shiplane.toml: defaults, and errors that name the key and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shiplane.config.frontdoor import door_settings
from shiplane.config.models import Environment
from shiplane.frontdoor.settings import DoorSettings


def env(**fields: Any) -> Environment:
    return Environment.model_validate({"branch": "dev", "port": 8001, **fields})


def test_defaults_are_loopback_and_safe_limits() -> None:
    settings = env()
    assert (settings.listen, settings.domains, settings.trusted_proxies) == ("127.0.0.1", [], [])
    assert settings.front_door.header_timeout == 10.0
    assert settings.front_door.max_connections_per_client == 128


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"listen": "everywhere"}, 'use an IP address, optionally with the port, e.g. "127.0.0.1"'),
        ({"listen": "0.0.0.0:80"}, "names port 80 but port = 8001"),
        ({"domains": ["https://x.com"]}, "is not a host name; write it lowercase"),
        ({"domains": ["Dev.Example.com"]}, "is not a host name"),
        ({"trusted_proxies": ["10.0.0.0/33"]}, "trusted_proxies: '10.0.0.0/33' is not"),
        ({"front_door": {"header_timout": 5}}, "header_timout"),
        ({"front_door": {"max_body_bytes": -1}}, "max_body_bytes"),
    ],
)
def test_errors_name_the_key_and_the_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        env(**fields)
    assert message in str(error.value)


def test_settings_reach_the_door_in_the_form_it_stores() -> None:
    config = env(
        listen="0.0.0.0:443",
        domains=["dev.example.com"],
        trusted_proxies=["10.0.0.0/8"],
        front_door={"max_body_bytes": 1024, "hold_timeout": 3.0},
    )
    plain = door_settings(
        config.port, config.listen, config.domains, config.trusted_proxies, config.front_door
    )
    door = DoorSettings.from_dict(plain, 0)
    assert (door.port, door.host, door.shared_port, door.domains) == (
        8001,
        "0.0.0.0",
        443,
        ("dev.example.com",),
    )
    assert (door.limits.max_body, door.limits.hold_timeout) == (1024, 3.0)
    assert door.trusted_proxies == ("10.0.0.0/8",)
    assert DoorSettings.from_dict(door.to_dict(), 0) == door  # what the server restores
