"""The instance port range is a setting of the host's server (`shiplane server config`), never of
an app: instances land inside it, a full range fails the start step naming it, bad values exit 64
and change nothing."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.support.app_repo import AppRepo
from tests.support.faults import without_checks


@contextmanager
def free_range(size: int) -> Iterator[tuple[int, int]]:
    """``size`` consecutive loopback ports nobody holds now (found by binding them)."""
    for _ in range(50):
        low = random.randrange(30000, 32700 - size)  # below the ephemeral range (see ports.py)
        try:
            with ExitStack() as stack:
                for port in range(low, low + size):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        yield low, low + size - 1
        return
    raise AssertionError("no free port range found")


def instance_port(run_data: dict[str, object]) -> int:
    steps = run_data["steps"]
    assert isinstance(steps, list)
    start = next(s for s in steps if s["name"] == "start")
    return int(str(start["detail"]).removeprefix("port "))


def test_config_shows_sets_and_refuses_bad_values(app_repo: AppRepo) -> None:
    shown = app_repo.shiplane("server", "config")
    assert shown.code == 0, shown.stdout
    assert shown.data["settings"] == {"instance_ports": None}
    assert app_repo.shiplane("server", "config", "instance_ports=20000-29999").code == 0
    settings_file = app_repo.home / "server-settings.json"
    assert json.loads(settings_file.read_text()) == {"instance_ports": "20000-29999"}
    before = settings_file.read_bytes()
    for bad in (
        "instance_ports=30000-20000",
        "instance_ports=80-90",
        "instance_ports=abc",
        "ports=1-2",
        "instance_ports",
    ):
        refused = app_repo.shiplane("server", "config", bad)
        assert refused.code == 64, (bad, refused.stdout)
        assert (
            "instance_ports" in refused.data["error"]["message"]
            or "KEY" in refused.data["error"]["message"]
        )
        assert refused.data["error"]["next_action"]
    assert settings_file.read_bytes() == before  # nothing changed
    assert app_repo.shiplane("server", "config").data["settings"] == {
        "instance_ports": "20000-29999"
    }


def test_instances_get_ports_from_the_range_and_a_full_range_fails_clearly(
    app_repo: AppRepo,
) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    with free_range(3) as (low, high):
        assert app_repo.shiplane("server", "config", f"instance_ports={low}-{high}").code == 0
        first = app_repo.shiplane("deploy", "dev")
        assert first.code == 0, first.stdout
        assert low <= instance_port(first.data) <= high
        app_repo.git("checkout", "-q", "dev")
        app_repo.commit("v2", {"VERSION": "2.0.0\n"})
        second = app_repo.shiplane("deploy", "dev")
        assert second.code == 0, second.stdout
        assert low <= instance_port(second.data) <= high
    # The range narrowed to one port that something else holds: the start step fails at once.
    with free_range(1) as (port, _), socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert app_repo.shiplane("server", "config", f"instance_ports={port}-{port}").code == 0
        app_repo.commit("v3", {"VERSION": "3.0.0\n"})
        failed = app_repo.shiplane("deploy", "dev")
        assert failed.code == 3, failed.stdout
        error = failed.data["error"]
        assert error["step"] == "start"
        assert f"instance_ports {port}-{port}" in error["message"]
        status = app_repo.shiplane("status", "dev")
        assert status.data["envs"]["dev"]["sha"].startswith(app_repo.git("rev-parse", "HEAD~1")[:7])
