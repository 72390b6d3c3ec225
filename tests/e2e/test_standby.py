"""Warm standby (issue 16 item 3): after a deploy the previous instance keeps running,
unrouted, and a rollback to it is a front-door switch. Real gunicorn instances, real HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from devtools.pgserver import PgServer
from tests.e2e.test_undo_keeps_writes import RENAME, RENAMED_APP, settle, v2_files
from tests.support.app_db import use_postgres
from tests.support.app_repo import AppRepo
from tests.support.wait import wait_for
from tests.support.writer import writing


def no_checks(app_repo: AppRepo, **deploy: str) -> None:
    """The example without its checks (what is measured here is the instance, not them), with
    ``deploy`` settings added to [deploy]."""
    config = app_repo.path / "shiplane.toml"
    text = config.read_text().split("# Checks:")[0]
    extra = "".join(f"{key} = {value}\n" for key, value in deploy.items())
    config.write_text(text.replace("[deploy]\n", "[deploy]\n" + extra))


def version(app_repo: AppRepo) -> str:
    return str(httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["version"])


def env_status(app_repo: AppRepo) -> dict[str, Any]:
    run = app_repo.shiplane("server", "status")
    assert run.code == 0, run.stdout + run.stderr
    return dict(run.data["envs"]["dev"])


def serving(app_repo: AppRepo) -> dict[str, Any]:
    return next(i for i in env_status(app_repo)["instances"] if i["serving"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone too
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def deploy_v1_then_v2(app_repo: AppRepo) -> tuple[dict[str, Any], dict[str, Any]]:
    """(v1's serving instance before v2, v2's): both deploys succeeded."""
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout + first.stderr
    v1 = serving(app_repo)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("2.0.0", {"VERSION": "2.0.0\n"})
    second = app_repo.shiplane("deploy", "dev")
    assert second.code == 0, second.stdout + second.stderr
    return v1, serving(app_repo)


@dataclass
class Poller:
    """GETs through the front door without pause; every answer that is not a 200 counts."""

    url: str
    answers: int = 0
    failures: list[str] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)


@contextlib.contextmanager
def polling(url: str) -> Iterator[Poller]:
    poller, stop = Poller(url), threading.Event()

    def run() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                try:
                    response = client.get(url)
                    poller.answers += 1
                    if response.status_code != 200:
                        poller.failures.append(f"HTTP {response.status_code}")
                    else:
                        poller.versions.add(response.json()["version"])
                except httpx.HTTPError as exc:
                    poller.failures.append(type(exc).__name__)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield poller
    finally:
        stop.set()
        thread.join(timeout=60)


def test_rollback_in_the_window_switches_to_the_same_warm_process(app_repo: AppRepo) -> None:
    no_checks(app_repo)
    v1, v2 = deploy_v1_then_v2(app_repo)

    # v1 keeps running, unrouted: the door serves v2, status names v1 as the standby.
    assert wait_for(lambda: (env_status(app_repo)["standby"] or {}).get("pid") == v1["pid"])
    assert alive(v1["pid"]) and version(app_repo) == "2.0.0"
    assert [i["id"] for i in env_status(app_repo)["instances"]] == [v2["id"]]
    assert wait_for(lambda: env_status(app_repo)["standby"]["health"]["state"] == "healthy")
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]
    standby = status["standby"]
    assert standby["release"].startswith("1-") and standby["expires_in_s"] > 800
    memory = status["memory"]
    assert memory["serving_rss_bytes"] > 10_000_000 and memory["standby_rss_bytes"] > 10_000_000
    assert memory["rss_bytes"] == memory["serving_rss_bytes"] + memory["standby_rss_bytes"]
    assert status["connections"] is None  # SQLite: no connection budget

    with polling(app_repo.url("dev", "/api/version")) as poller:
        assert wait_for(lambda: poller.answers > 20)
        run = app_repo.shiplane("rollback", "dev")
        assert run.code == 0, run.stdout + run.stderr
        assert wait_for(lambda: "1.0.0" in poller.versions)
        seen = poller.answers
        assert wait_for(lambda: poller.answers > seen + 20)
    assert poller.failures == [] and poller.versions == {"1.0.0", "2.0.0"}
    assert run.data["standby"] is True and run.data["standby_reason"] is None
    assert isinstance(run.data["switch_ms"], int)
    steps = {s["name"]: s for s in run.data["steps"]}
    assert "nothing started" in steps["start"]["detail"], steps["start"]
    assert "no wait" in steps["health"]["detail"], steps["health"]

    # The same v1 process serves; v2 was drained and stopped, not kept.
    assert version(app_repo) == "1.0.0"
    now = serving(app_repo)
    assert (now["id"], now["pid"]) == (v1["id"], v1["pid"])
    assert wait_for(lambda: not alive(v2["pid"]))
    after = env_status(app_repo)
    assert after["standby"] is None and [i["id"] for i in after["instances"]] == [v1["id"]]


def test_an_undone_rollback_puts_the_standby_back(app_repo: AppRepo) -> None:
    no_checks(app_repo)
    v1, v2 = deploy_v1_then_v2(app_repo)
    assert wait_for(lambda: (env_status(app_repo)["standby"] or {}).get("pid") == v1["pid"])
    run = app_repo.shiplane("rollback", "dev", extra_env={"SHIPLANE_FAULT": "smoke:fail"})
    assert run.code == 4, run.stdout + run.stderr
    assert any("back on standby" in u for u in run.data["error"]["undone"]), run.stdout
    # v2 serves again and v1, the same process, waits on standby for the next try.
    assert version(app_repo) == "2.0.0" and serving(app_repo)["pid"] == v2["pid"]
    assert env_status(app_repo)["standby"]["pid"] == v1["pid"] and alive(v1["pid"])
    again = app_repo.shiplane("rollback", "dev")
    assert again.code == 0 and again.data["standby"] is True, again.stdout
    assert serving(app_repo)["pid"] == v1["pid"]


def test_standby_stops_when_its_time_is_up(app_repo: AppRepo) -> None:
    no_checks(app_repo, standby_ttl="10")
    v1, _ = deploy_v1_then_v2(app_repo)
    assert (env_status(app_repo)["standby"] or {}).get("pid") == v1["pid"]
    assert wait_for(lambda: env_status(app_repo)["standby"] is None, timeout=40)
    assert wait_for(lambda: not alive(v1["pid"]))
    # Past the window a rollback starts the release again, as it always did.
    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert run.data["standby"] is False and run.data["standby_reason"] == "no standby instance"
    assert version(app_repo) == "1.0.0" and serving(app_repo)["pid"] != v1["pid"]


def test_standby_off_stops_the_old_instance_after_its_drain(app_repo: AppRepo) -> None:
    no_checks(app_repo, standby="false")
    v1, v2 = deploy_v1_then_v2(app_repo)
    assert wait_for(lambda: not alive(v1["pid"]))
    status = env_status(app_repo)
    assert status["standby"] is None and [i["id"] for i in status["instances"]] == [v2["id"]]
    assert status["memory"]["standby_rss_bytes"] == 0
    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0 and run.data["standby"] is False, run.stdout
    assert version(app_repo) == "1.0.0"


def test_a_crashed_standby_is_not_used(app_repo: AppRepo) -> None:
    no_checks(app_repo)
    v1, _ = deploy_v1_then_v2(app_repo)
    assert wait_for(lambda: (env_status(app_repo)["standby"] or {}).get("pid") == v1["pid"])
    os.killpg(v1["pid"], signal.SIGKILL)  # the standby's gunicorn and its workers
    assert wait_for(lambda: not alive(v1["pid"]))

    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert run.data["standby"] is False, run.stdout
    reason = run.data["standby_reason"]
    assert "crashed" in reason or "health" in reason, reason
    # A fresh v1 serves, and the crashed standby (restarted by the supervisor) is gone.
    assert version(app_repo) == "1.0.0"
    status = env_status(app_repo)
    assert status["standby"] is None
    assert [i["serving"] for i in status["instances"]] == [True]
    assert status["instances"][0]["id"] != v1["id"]


def test_a_rollback_with_a_newer_migration_still_holds(app_repo: AppRepo) -> None:
    no_checks(app_repo)
    config = app_repo.path / "shiplane.toml"
    # The old release's check on the new schema: its home page lists the notes' tags.
    config.write_text(
        config.read_text()
        + '\n[[verify.check]]\nname = "home"\nkind = "http"\ngroup = "smoke"\npath = "/"\n'
        'contains = ["<h1>Notes</h1>"]\n'
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    v1 = serving(app_repo)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2: labels", v2_files(app_repo, RENAME, RENAMED_APP))
    with writing(app_repo.url("dev")) as writer:
        settle(writer)
        deployed = app_repo.shiplane("deploy", "dev")
        assert deployed.code == 0, deployed.stdout
        assert wait_for(lambda: (env_status(app_repo)["standby"] or {}).get("pid") == v1["pid"])
        settle(writer)
        before = writer.mark()
        run = app_repo.shiplane("rollback", "dev")
        assert run.code == 0, run.stdout + run.stderr
        settle(writer)
        after = writer.mark()
    # The standby was taken (no start), found failing on the renamed schema, and the `down`
    # ran under the hold: requests were late, none failed.
    assert run.data["standby"] is True, run.stdout
    database = run.data["database"]
    assert database["action"] == "down" and database["old_code_fails"], database
    assert database["hold_seconds"] is not None
    assert after[1] == before[1] and after[0] > before[0]
    assert version(app_repo) == "1.0.0"


def test_status_shows_the_postgresql_connection_budget(
    app_repo: AppRepo, postgres: PgServer
) -> None:
    no_checks(app_repo)
    url = use_postgres(app_repo.path / "shiplane.toml", postgres, envs=("dev",))["dev"].url
    assert url is not None
    v1, _ = deploy_v1_then_v2(app_repo)
    assert wait_for(lambda: (env_status(app_repo)["standby"] or {}).get("pid") == v1["pid"])
    with psycopg.connect(url) as ours:  # one connection of our own, open while status reads
        run = app_repo.shiplane("status", "dev")
        row = ours.execute("SHOW max_connections").fetchone()
    assert run.code == 0, run.stdout + run.stderr
    budget = run.data["envs"]["dev"]["connections"]
    assert row is not None and budget["max_connections"] == int(row[0])
    assert budget["database_connections"] >= 1, budget
    assert budget["connections"] >= budget["database_connections"]
    assert postgres.password not in run.stdout + run.stderr
    # `server stop` ends the standby with everything else the server runs.
    assert alive(v1["pid"])
    app_repo.stop_server()
    assert wait_for(lambda: not alive(v1["pid"]))
