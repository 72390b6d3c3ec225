"""End-to-end: a deploy returns at the switch while the old instance drains in the server;
`--wait-drain` returns only after the drain. Real gunicorn instances, real HTTP."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.app_repo import AppRepo, Run
from tests.support.wait import wait_for

# Answers once the file named by ?until= exists (at most 240 s): the test decides when the
# request in flight ends.
SLOW_ROUTE = """

@app.get("/slow")
def slow():
    import time

    flag = Path(request.args["until"])
    deadline = time.monotonic() + 240
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return jsonify(done=flag.exists(), version=VERSION)
"""


@dataclass
class SlowRequest:
    """One long GET through the front door, in a thread of its own."""

    url: str
    flag: Path
    outcome: dict = field(default_factory=dict)
    thread: threading.Thread | None = None

    def start(self) -> SlowRequest:
        def run() -> None:
            try:
                response = httpx.get(self.url, timeout=60)
                self.outcome.update(status=response.status_code, body=response.json())
            except (httpx.HTTPError, ValueError) as exc:
                self.outcome.update(error=repr(exc))
            self.outcome["finished"] = time.monotonic()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    def done(self) -> bool:
        return "finished" in self.outcome

    def finish(self) -> dict:
        """Let the request end; its outcome."""
        self.flag.write_text("go")
        assert self.thread is not None
        self.thread.join(30)
        return self.outcome


def _slow(app_repo: AppRepo, tmp: Path) -> SlowRequest:
    flag = tmp / "finish-slow-request"
    return SlowRequest(app_repo.url("dev", f"/slow?until={flag}"), flag).start()


class Background:
    """A CLI command in a thread of its own."""

    def __init__(self, app_repo: AppRepo, *args: str) -> None:
        self.run: Run | None = None
        self.returned = 0.0

        def go() -> None:
            self.run = app_repo.shiplane(*args)
            self.returned = time.monotonic()

        self.thread = threading.Thread(target=go, daemon=True)
        self.thread.start()

    def result(self) -> Run:
        self.thread.join(240)
        assert self.run is not None
        return self.run


def _prepare(app_repo: AppRepo, drain_timeout: float) -> None:
    config = app_repo.path / "shiplane.toml"
    text = config.read_text()
    assert "drain_timeout = 5.0" in text
    # gunicorn's own worker timeout (30 s) must not end the slow request on a busy machine.
    config.write_text(
        text.replace("drain_timeout = 5.0", f"drain_timeout = {drain_timeout}").replace(
            "--graceful-timeout 10 app:app", "--graceful-timeout 10 --timeout 300 app:app"
        )
    )
    app_repo.git("checkout", "-q", "dev")
    app_py = app_repo.path / "app.py"
    app_repo.commit("slow route", {"app.py": app_py.read_text() + SLOW_ROUTE})
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout + first.stderr


def _instances(app_repo: AppRepo) -> list[dict]:
    return app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]


def _in_flight(app_repo: AppRepo) -> bool:
    return any(i["inflight"] for i in _instances(app_repo))


def _drain_step(run_data: dict) -> dict:
    return next(s for s in run_data["steps"] if s["name"] == "drain")


def test_deploy_returns_at_the_switch_and_the_old_instance_finishes_its_request(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    _prepare(app_repo, drain_timeout=90.0)
    slow = _slow(app_repo, tmp_path)
    assert wait_for(lambda: _in_flight(app_repo), timeout=20)

    app_repo.commit("2.0.0", {"VERSION": "2.0.0\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    # The result came while the old instance still served its request.
    assert not slow.done()
    assert "in the background" in _drain_step(run.data)["detail"]
    new_version = httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()
    assert new_version["version"] == "2.0.0"
    draining = [i for i in _instances(app_repo) if i["draining"]]
    assert len(draining) == 1 and not draining[0]["serving"] and draining[0]["inflight"] == 1

    # A later deploy of the env waits for that drain before it starts an instance.
    app_repo.commit("3.0.0", {"VERSION": "3.0.0\n"})
    later = Background(app_repo, "deploy", "dev")
    server_log = app_repo.home / "server.log"
    waiting = f"waiting for the drain of {draining[0]['id']}"
    assert wait_for(lambda: waiting in server_log.read_text(), timeout=60)
    time.sleep(0.5)
    assert later.thread.is_alive()
    assert slow.finish() == {
        "status": 200,
        "body": {"done": True, "version": "1.0.0"},
        "finished": slow.outcome["finished"],
    }
    assert later.result().code == 0, later.result().stdout
    versions = httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()
    assert versions["version"] == "3.0.0"
    # Its own old instance drains in the background; then only the serving one is left.
    assert wait_for(lambda: len(_instances(app_repo)) == 1, timeout=60)
    log = (app_repo.root / "dev" / "logs" / f"deploy-{run.data['deployment_id']}.log").read_text()
    assert f"background drain: {draining[0]['id']} drained and kept on standby" in log


def test_wait_drain_returns_after_the_old_instance_finished(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    _prepare(app_repo, drain_timeout=90.0)
    slow = _slow(app_repo, tmp_path)
    assert wait_for(lambda: _in_flight(app_repo), timeout=20)
    old = next(i["id"] for i in _instances(app_repo) if i["serving"])

    app_repo.commit("2.0.0", {"VERSION": "2.0.0\n"})
    deploy = Background(app_repo, "deploy", "dev", "--wait-drain")
    # Past the switch, the deploy waits on the old instance's drain.
    assert wait_for(
        lambda: any(i["id"] == old and i["draining"] for i in _instances(app_repo)), timeout=120
    )
    time.sleep(1.0)
    assert deploy.thread.is_alive()
    outcome = slow.finish()
    run = deploy.result()
    assert run.code == 0, run.stdout + run.stderr
    assert outcome["status"] == 200 and outcome["body"]["version"] == "1.0.0"
    assert outcome["finished"] <= deploy.returned
    # Drained, then kept warm for a rollback (the standby is not among the instances).
    assert _drain_step(run.data)["detail"].startswith("drained")
    instances = _instances(app_repo)
    assert len(instances) == 1 and instances[0]["serving"] and not instances[0]["draining"]

    # A rollback waits the same way when asked to.
    back = app_repo.shiplane("rollback", "dev", "--wait-drain")
    assert back.code == 0, back.stdout + back.stderr
    assert _drain_step(back.data)["detail"] == "drained"
    assert httpx.get(app_repo.url("dev", "/api/version"), timeout=5).json()["version"] == "1.0.0"
    assert len(_instances(app_repo)) == 1


def test_restart_and_promote_wait_for_the_drain_when_asked(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    """`--wait-drain` is the same option on restart and promote as on deploy and rollback."""
    _prepare(app_repo, drain_timeout=90.0)
    slow = _slow(app_repo, tmp_path)
    assert wait_for(lambda: _in_flight(app_repo), timeout=20)
    old = next(i["id"] for i in _instances(app_repo) if i["serving"])
    restart = Background(app_repo, "restart", "dev", "--wait-drain")
    assert wait_for(
        lambda: any(i["id"] == old and i["draining"] for i in _instances(app_repo)), timeout=120
    )
    time.sleep(1.0)
    assert restart.thread.is_alive()  # past the switch, waiting on the old instance
    outcome = slow.finish()
    run = restart.result()
    assert run.code == 0, run.stdout + run.stderr
    assert outcome["status"] == 200 and outcome["finished"] <= restart.returned
    assert _drain_step(run.data)["detail"] == "drained"
    assert [i["id"] != old for i in _instances(app_repo)] == [True]
    # Without the flag a restart returns at the switch, the drain in the background.
    quick = app_repo.shiplane("restart", "dev")
    assert quick.code == 0 and _drain_step(quick.data)["detail"].startswith("draining ")

    assert app_repo.shiplane("verify", "dev").code == 0
    first = app_repo.shiplane("promote", "prod")
    assert first.code == 0, first.stdout + first.stderr
    again = app_repo.shiplane("promote", "prod", "--redeploy", "--wait-drain")
    assert again.code == 0, again.stdout + again.stderr
    # A promotion is a deploy: the replaced instance, drained, stays on as the warm standby.
    assert _drain_step(again.data)["detail"] == "drained, then on standby for 900s"
    prod = app_repo.shiplane("server", "status").data["envs"]["prod"]["instances"]
    assert [i["serving"] for i in prod] == [True]  # the replaced one is gone already
