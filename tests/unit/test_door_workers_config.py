"""`front_door.workers`: one process unless asked, carried to the door's stored settings, and
refused where the workers cannot serve (domains, tls) with the key and the fix named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shiplane.config.frontdoor import door_settings
from shiplane.config.models import Environment
from shiplane.frontdoor.base import Upstream
from shiplane.frontdoor.settings import DoorSettings
from shiplane.frontdoor.static import StaticFiles
from shiplane.frontdoor.worker import decode_upstream, encode_upstream


def env(**fields: Any) -> Environment:
    return Environment.model_validate({"branch": "dev", "port": 8001, **fields})


def test_one_process_unless_asked_and_the_number_reaches_the_door() -> None:
    assert env().front_door.workers == 1
    assert DoorSettings.from_dict({}, 8001).workers == 1  # settings stored before workers
    two = env(front_door={"workers": 2})
    stored = door_settings(8001, two.listen, [], [], two.front_door)
    assert stored["workers"] == 2 and "workers" not in stored["limits"]
    assert DoorSettings.from_dict(stored, 8001).workers == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"front_door": {"workers": 0}}, "front_door.workers"),
        ({"front_door": {"workers": 65}}, "front_door.workers"),
        (
            {"front_door": {"workers": 2}, "domains": ["a.example.com"], "listen": "0.0.0.0:80"},
            "front_door.workers = 2 serves the env's own port only",
        ),
    ],
)
def test_bad_numbers_and_places_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        env(**fields)
    assert message in str(error.value)


def test_an_upstream_with_its_static_mounts_crosses_the_pipe(tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    static = StaticFiles({"/static": tmp_path / "static"}, 3600, 30.0)
    upstream = Upstream("i1", "127.0.0.1", 8123, {"sha": "abc"}, static)
    back = decode_upstream(encode_upstream(upstream))
    assert back is not None and back == upstream and back.info == {"sha": "abc"}
    assert back.static is not None and back.static.mounts == static.mounts
    assert back.static.cache_control == static.cache_control
    assert back.static.idle_timeout == 30.0
    assert decode_upstream(encode_upstream(None)) is None
