"""Issue 14, health tells the truth: the server keeps probing what serves, so a version that
passes its deploy health check and then crash-loops reads as crashed on /_deploy/health (503)
and in `shiplane status`; a good version deployed over it fixes it forward. Real server, real
processes, real HTTP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.app_repo import AppRepo

# A tiny app: answers every path; with a CRASH_AFTER file it exits that many seconds after
# each start (the supervisor restarts it, and it crashes again).
APP = """\
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

here = os.path.dirname(os.path.abspath(__file__))
crash = os.path.join(here, "CRASH_AFTER")
if os.path.exists(crash):
    delay = float(open(crash).read())
    threading.Timer(delay, lambda: os._exit(1)).start()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _config(name: str, port: int) -> str:
    return f"""\
[app]
name = "{name}"
run = "python app.py {{port}}"
health = "/healthz"

[health]
interval = 0.1
timeout = 8.0
monitor_interval = 0.3

[deploy]
drain_timeout = 2.0
# Health reporting alone: the watch would roll the crashing version back (test_watch.py).
watch = 0

[environments.dev]
branch = "dev"
port = {port}
auto_merge = true

[[verify.check]]
name = "same shape"
kind = "diff"
paths = ["/"]
"""


def _health(app_repo: AppRepo) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(app_repo.url("dev", "/_deploy/health"), timeout=5)
    return answer.status_code, answer.json()


def _wait_for(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_a_crash_looping_version_reads_as_crashed_and_a_fix_goes_forward(
    app_repo: AppRepo,
) -> None:
    for stale in ("migrations", "templates", "e2e"):
        app_repo.git("rm", "-rq", "--cached", stale)
    (app_repo.path / "shiplane.toml").write_text(_config(app_repo.name, app_repo.ports["dev"]))
    app_repo.commit("a tiny app", {"app.py": APP})
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout
    code, body = _wait_for(lambda: (lambda r: r if r[1].get("state") == "healthy" else None)(
        _health(app_repo)), 10)  # fmt: skip
    assert code == 200 and body["ok"] is True

    # Passes its deploy health check, then dies 2 s after every start.
    app_repo.commit("crashes", {"CRASH_AFTER": "2"})
    crashing = app_repo.shiplane("deploy", "dev")
    assert crashing.code == 0, crashing.stdout
    started = time.monotonic()

    def down() -> tuple[int, dict[str, Any]] | None:
        code, body = _health(app_repo)
        return (code, body) if code == 503 else None

    seen = _wait_for(down, 15)
    assert seen is not None, "health never stopped saying ok"
    code, body = seen
    assert body["ok"] is False and body["state"] in ("crashed", "unhealthy", "restarting"), body
    assert body["sha"] == crashing.data["sha"]
    assert time.monotonic() - started < 15
    status = app_repo.shiplane("status", "dev")
    env = status.data["envs"]["dev"]
    assert env["healthy"] is False, env
    assert env["health"]["state"] in ("crashed", "unhealthy", "restarting"), env
    restarts = _wait_for(
        lambda: app_repo.shiplane("status", "dev").data["envs"]["dev"]["health"]["restarts"],
        15,
    )
    assert restarts >= 1

    # Fixing forward: a good version deployed over the crashing one serves and is healthy.
    app_repo.git("rm", "-q", "CRASH_AFTER")
    app_repo.commit("fixed")
    forward = app_repo.shiplane("deploy", "dev")
    assert forward.code == 0, forward.stdout
    # The diff check had nothing healthy to compare with: skipped, saying why, not failed.
    verify = next(s for s in forward.data["steps"] if s["name"] == "verify")
    assert "skipped" in verify["detail"], verify
    log = Path(forward.data["log"]).read_text()
    assert "what serves is not healthy" in log
    healthy = _wait_for(lambda: _health(app_repo)[1].get("state") == "healthy", 10)
    assert healthy
    time.sleep(3)  # longer than the crashing version lived: this one stays up
    code, body = _health(app_repo)
    assert code == 200 and body["state"] == "healthy" and body["restarts"] == 0, body
