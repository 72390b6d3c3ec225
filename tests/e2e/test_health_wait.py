"""End-to-end: the health wait on real gunicorn instances. The first check goes out at once and
the pauses grow from ~10 ms to the interval; an instance that exits ends the wait at once."""

from __future__ import annotations

import re
import time

import httpx

from tests.support.app_repo import AppRepo


def _health_config(app_repo: AppRepo, interval: float, timeout: float) -> None:
    config = app_repo.path / "shiplane.toml"
    text = config.read_text()
    assert "interval = 0.2\ntimeout = 8.0" in text
    config.write_text(
        text.replace("interval = 0.2\ntimeout = 8.0", f"interval = {interval}\ntimeout = {timeout}")
    )


def _step(data: dict, name: str) -> dict:
    return next(s for s in data["steps"] if s["name"] == name)


def test_slow_start_is_seen_long_before_one_interval(app_repo: AppRepo) -> None:
    # One interval is 6 s: a wait that pauses a whole interval after the first (refused) check
    # takes at least that; growing pauses see the app soon after its 1 s start.
    _health_config(app_repo, interval=6.0, timeout=30.0)
    app_repo.git("checkout", "-q", "dev")
    app_py = app_repo.path / "app.py"
    slow = (
        app_py.read_text()
        .replace("import os\n", "import os\nimport time\n")
        .replace("app = Flask(__name__)", "time.sleep(1.0)\napp = Flask(__name__)")
    )
    app_repo.commit("slow start", {"app.py": slow})

    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    health = _step(run.data, "health")
    assert health["duration_ms"] < 5000, health
    assert "check(s)" in health["detail"]
    checks = int(health["detail"].split("after ")[1].split(" ")[0])
    assert checks >= 2, health  # the first check came before the app was up
    assert httpx.get(app_repo.url("dev", "/healthz"), timeout=5).status_code == 200


def test_instance_that_exits_fails_at_once_with_code_and_traceback(app_repo: AppRepo) -> None:
    _health_config(app_repo, interval=1.0, timeout=60.0)
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    app_repo.git("checkout", "-q", "dev")
    app_py = app_repo.path / "app.py"
    app_repo.commit(
        "crash at import",
        {
            "app.py": app_py.read_text().replace(
                "app = Flask(__name__)",
                'raise RuntimeError("NOTES_SETTING is missing")\napp = Flask(__name__)',
            )
        },
    )

    started = time.monotonic()
    run = app_repo.shiplane("deploy", "dev")
    elapsed = time.monotonic() - started
    assert run.code == 3, run.stdout + run.stderr
    error = run.data["error"]
    assert error["step"] == "health"
    # gunicorn halts (3, or 1 when its arbiter dies first) when a worker cannot boot; the
    # exit code and the app's own traceback are quoted.
    assert re.search(r"exited with code [1-9]", error["message"]), error
    assert "Traceback" in error["message"]
    assert "RuntimeError: NOTES_SETTING is missing" in error["message"]
    assert "instance log" in error["next_action"]
    # Far below the 60 s health timeout (the deploy's other steps included).
    assert _step(run.data, "health")["duration_ms"] < 10_000
    assert elapsed < 30, elapsed
    # The old version never stopped serving, and the crashed instance is gone.
    assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"] == before
    instances = app_repo.shiplane("server", "status").data["envs"]["dev"]["instances"]
    assert len(instances) == 1 and instances[0]["serving"]
