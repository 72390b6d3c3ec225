"""`front_door.workers = 2`: two door processes accept on the env's port (SO_REUSEPORT) while
the server keeps the state. Connections land on both; a deploy under a hammering client fails no
request and, once it returned, every request reaches the new release; a hold for a schema change
holds on both; a killed worker comes back; a stopped server leaves no worker."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.test_forward_hold import ADDITIVE, configure, first_note, present
from tests.e2e.test_undo_keeps_writes import settle, smoke_only, v2_files, version
from tests.support.app_repo import AppRepo
from tests.support.reader import reading
from tests.support.sqlite_util import columns
from tests.support.wait import wait_for
from tests.support.writer import writing


def with_workers(app_repo: AppRepo, workers: int = 2) -> None:
    config = app_repo.path / "shiplane.toml"
    text = re.sub(r"front_door = \{ workers = \d+ \}\n", "", config.read_text())
    line = f"front_door = {{ workers = {workers} }}\n"
    config.write_text(text.replace("[environments.dev]\n", "[environments.dev]\n" + line))


def door_status(app_repo: AppRepo) -> dict[str, Any]:
    """The env's front door as /_deploy/status says (asked through the door: a worker asks
    the server)."""
    token = (app_repo.home / "server.token").read_text()
    answer = httpx.get(
        app_repo.url("dev", "/_deploy/status"), headers={"x-shiplane-token": token}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    door: dict[str, Any] = answer.json()["front_door"]
    return door


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@dataclass
class Hammer:
    seen: list[tuple[float, str]] = field(default_factory=list)  # (sent at, version)
    failures: list[str] = field(default_factory=list)


@contextmanager
def hammering(url: str) -> Iterator[Hammer]:
    """Two clients, one on a kept-alive connection and one opening a connection per request,
    asking the version without pause."""
    hammer = Hammer()
    stop = threading.Event()

    def run(keepalive: bool) -> None:
        limits = httpx.Limits(max_keepalive_connections=1 if keepalive else 0)
        with httpx.Client(timeout=15, limits=limits) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.get(url)
                    if response.status_code != 200:
                        hammer.failures.append(f"HTTP {response.status_code}: {response.text[:80]}")
                    else:
                        hammer.seen.append((sent, response.json()["version"]))
                except httpx.HTTPError as exc:
                    how = "kept-alive" if keepalive else "new connection"
                    hammer.failures.append(f"{how}, sent at {sent:.3f}: {exc!r}")

    threads = [threading.Thread(target=run, args=(k,)) for k in (True, False)]
    for thread in threads:
        thread.start()
    try:
        yield hammer
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def test_two_workers_share_the_port_and_a_deploy_switches_both(app_repo: AppRepo) -> None:
    with_workers(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    workers = door_status(app_repo)["workers"]
    pids = [w["pid"] for w in workers]
    assert len(pids) == 2 and all(pids) and len(set(pids)) == 2, workers
    # A connection each: the kernel spreads them over both workers' sockets.
    for _ in range(200):
        with httpx.Client(timeout=10) as client:
            assert client.get(app_repo.url("dev", "/api/version")).status_code == 200
    assert wait_for(lambda: all(w["requests"] >= 20 for w in door_status(app_repo)["workers"]))
    assert [w["pid"] for w in door_status(app_repo)["workers"]] == pids
    # Each worker appends its own lines to the env's one access log.
    log = (app_repo.root / "dev" / "logs" / "access.log").read_text().splitlines()
    assert sum('"GET /api/version HTTP/1.1" 200' in line for line in log) >= 200

    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    with hammering(app_repo.url("dev", "/api/version")) as hammer:
        time.sleep(0.5)
        deploy = app_repo.shiplane("deploy", "dev")
        returned = time.monotonic()
        assert deploy.code == 0, deploy.stdout
        time.sleep(1.0)
    assert hammer.failures == [], hammer.failures[:5]
    before = [v for sent, v in hammer.seen if sent < returned]
    after = [v for sent, v in hammer.seen if sent > returned]
    assert "1.0.0" in before and len(after) > 20, (len(before), len(after))
    assert set(after) == {"2.0.0"}  # sent after the deploy returned: the new release only


def test_a_hold_for_a_schema_change_holds_on_every_worker(app_repo: AppRepo) -> None:
    smoke_only(app_repo)
    configure(app_repo, hold=True)
    with_workers(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    read_url = first_note(app_repo)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2: pinned", v2_files(app_repo, ADDITIVE, {}))
    with writing(app_repo.url("dev")) as writer, reading(read_url) as reader:
        settle(writer)
        run = app_repo.shiplane("deploy", "dev", "--hold-timeout", "20")
        assert run.code == 0, run.stdout
        assert run.data["hold"]["reasons"] == ["database.hold = true"], run.data["hold"]
        assert run.data["hold_seconds"] > 0
        assert "pinned" in columns(db, "notes") and version(app_repo) == "2.0.0"
        settle(writer)
    assert writer.failures == [] and reader.failures == [], (writer.failures, reader.failures)
    assert present(db, writer.acked) == set()
    # Both workers relayed the writer and the reader (each opens its own connection).
    assert all(w["requests"] > 0 for w in door_status(app_repo)["workers"])


def test_a_killed_worker_comes_back_and_a_stopped_server_leaves_none(app_repo: AppRepo) -> None:
    with_workers(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    first = door_status(app_repo)["workers"]
    killed = first[0]["pid"]
    os.kill(killed, signal.SIGKILL)

    def back() -> bool:
        workers = door_status(app_repo)["workers"]
        return workers[0]["pid"] not in (None, killed) and workers[0]["restarts"] == 1

    assert wait_for(back, timeout=20)
    assert not alive(killed)
    workers = door_status(app_repo)["workers"]
    assert workers[1]["pid"] == first[1]["pid"]  # the other one never stopped
    for _ in range(50):
        with httpx.Client(timeout=10) as client:
            assert client.get(app_repo.url("dev", "/api/version")).status_code == 200
    assert wait_for(lambda: door_status(app_repo)["workers"][0]["requests"] > 0)

    pids = [w["pid"] for w in door_status(app_repo)["workers"]]
    app_repo.stop_server()
    assert wait_for(lambda: not any(alive(pid) for pid in pids), timeout=20), pids


def test_workers_come_and_go_with_the_config_while_the_port_serves(app_repo: AppRepo) -> None:
    """1 -> 2 -> 1: the port's listening socket passes from the one-process door to the
    workers and back, so no connection is refused in between."""
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "dev")
    with hammering(app_repo.url("dev", "/api/version")) as hammer:
        for workers, release in ((2, "2.0.0"), (1, "3.0.0")):
            with_workers(app_repo, workers)
            app_repo.commit(f"workers {workers}", {"VERSION": f"{release}\n"})
            deploy = app_repo.shiplane("deploy", "dev")
            assert deploy.code == 0, deploy.stdout
            assert version(app_repo) == release
            status = door_status(app_repo)
            assert len(status.get("workers", [None])) == workers, status
    assert hammer.failures == [], hammer.failures[:5]
    assert {"1.0.0", "2.0.0", "3.0.0"} <= {v for _, v in hammer.seen}
