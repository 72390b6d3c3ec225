"""Pure parts of static files and server settings: the mount map's validation, fingerprinted
names, Accept-Encoding, and the instance port range."""

from __future__ import annotations

import pytest

from shiplane.config.static import check_static
from shiplane.errors import ConfigError
from shiplane.frontdoor.static import FINGERPRINT, _accepts_gzip
from shiplane.serversettings import PortRange, ServerSettings, updated


def test_mounts_are_normalised_and_bad_ones_refused() -> None:
    assert check_static({"/static/": "staticfiles/"}) == {"/static": "staticfiles"}
    assert check_static({"/a/b": "build/assets"}) == {"/a/b": "build/assets"}
    for prefix, directory in [
        ("static", "x"),
        ("/", "x"),
        ("/a b", "x"),
        ("/../x", "x"),
        ("/_deploy/x", "x"),
        ("/s", "/etc"),
        ("/s", "../up"),
        ("/s", "a/../../b"),
        ("/s", "."),
        ("/s", ""),
    ]:
        with pytest.raises(ValueError, match=r"^mount "):
            check_static({prefix: directory})


@pytest.mark.parametrize(
    ("name", "immutable"),
    [
        ("app.3f2a1b.css", True),
        ("app.3f2a1b9c8d7e.js", True),
        ("jquery.facade.js", False),
        ("app.css", False),
        ("logo.12.png", False),
    ],
)
def test_fingerprinted_names(name: str, immutable: bool) -> None:
    assert (FINGERPRINT.search(name) is not None) is immutable


def test_accept_encoding() -> None:
    assert _accepts_gzip(b"gzip, deflate, br")
    assert _accepts_gzip(b"br;q=1.0, gzip;q=0.5")
    assert _accepts_gzip(b"*")
    assert not _accepts_gzip(b"gzip;q=0")
    assert not _accepts_gzip(b"br, deflate")
    assert not _accepts_gzip(None)


def test_port_range_setting() -> None:
    assert str(PortRange.parse("20000-29999")) == "20000-29999"
    assert PortRange.parse(" 3000 - 3000 ").size == 1
    settings = updated(ServerSettings(), ["instance_ports=20000-20009"])
    assert settings.shown() == {"instance_ports": "20000-20009"}
    assert updated(settings, ["instance_ports="]).instance_ports is None
    for bad in ["instance_ports=2-1", "instance_ports=80-90", "instance_ports=1-70000", "x=1", "y"]:
        with pytest.raises(ConfigError) as caught:
            updated(settings, [bad])
        assert caught.value.exit_code == 64 and caught.value.next_action
