"""Front-door settings in shiplane.toml: defaults, and errors that name the key and the fix."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shiplane.config import snapshot
from shiplane.config.frontdoor import door_settings, tls_settings
from shiplane.config.loader import env_settings, load_config
from shiplane.config.models import Environment
from shiplane.errors import ConfigError
from shiplane.frontdoor.settings import DoorSettings
from shiplane.layout import Layout


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


ACME = {"acme": True, "email": "ops@example.com"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"listen": "0.0.0.0:443", "tls": ACME}, "tls needs domains"),
        ({"domains": ["a.example.com"], "tls": ACME}, "tls needs the HTTPS port in listen"),
        (
            {
                "listen": "0.0.0.0:443",
                "domains": ["a.example.com"],
                "tls": {**ACME, "http_port": 443},
            },
            "tls.http_port = 443 is also the HTTPS port",
        ),
        (
            {"listen": "0.0.0.0:443", "domains": ["a.example.com"], "tls": {"redirect_http": True}},
            "no certificate source",
        ),
    ],
)
def test_tls_errors_name_the_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        env(**fields)
    assert message in str(error.value)


def test_tls_settings_reach_the_door_with_server_side_paths(tmp_path: Path) -> None:
    config = env(
        listen="0.0.0.0:443",
        domains=["a.example.com"],
        tls={"cert": "site.pem", "key": "site.key", "hsts": True, "http_port": 8080},
    )
    assert config.tls is not None
    files = {"cert": tmp_path / "tls/dev.cert.pem", "key": tmp_path / "tls/dev.key.pem"}
    plain = door_settings(
        config.port,
        config.listen,
        config.domains,
        config.trusted_proxies,
        config.front_door,
        tls_settings(config.tls, files),
    )
    door = DoorSettings.from_dict(plain, 0)
    assert door.tls is not None and door.shared_port == 443
    assert (door.tls.cert, door.tls.key) == (str(files["cert"]), str(files["key"]))
    assert (door.tls.acme, door.tls.http_port, door.tls.hsts) == (False, 8080, 31_536_000)
    assert DoorSettings.from_dict(door.to_dict(), 0) == door  # what a restart reads back


def test_tls_files_travel_with_the_config_and_are_kept_private(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "certs").mkdir(parents=True)
    (repo / "certs" / "site.pem").write_text("CHAIN")
    (repo / "certs" / "site.key").write_text("KEY")
    (repo / "shiplane.toml").write_text(
        '[app]\nname = "shop"\nrun = "x {port}"\n'
        '[environments.prod]\nbranch = "main"\nport = 8000\nlisten = "0.0.0.0:443"\n'
        'domains = ["shop.example.com"]\n'
        'tls = { cert = "certs/site.pem", key = "certs/site.key" }\n'
    )
    payload = snapshot.pack(load_config(repo / "shiplane.toml"))
    assert payload["files"] == {"tls/prod.cert.pem": "CHAIN", "tls/prod.key.pem": "KEY"}
    received = snapshot.receive(payload, tmp_path / "home")
    Layout(tmp_path / "home", "shop").config_dir.parent.mkdir(parents=True)
    snapshot.write(received)
    settings = env_settings(received, "prod")
    key = settings.tls_files["key"]
    assert key.read_text() == "KEY" and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert snapshot.load(received.path.parent).sent == received.sent
    with pytest.raises(ConfigError, match="unknown config file"):
        snapshot.receive({**payload, "files": {"tls/prod.other.pem": "x"}}, tmp_path / "home")
