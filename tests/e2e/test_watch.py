"""Issue 14, the watch after every switch: for `deploy.watch` seconds the server watches the new
version and rolls it back on its own (through `rollback`) when it crashes, fails its probes or
raises the 5xx rate; a few errors below the minimum do not; where going back would need a
destructive `down` it alerts and keeps serving; a deploy counts as promotion evidence once its
watch ended clean. Real server, real app processes, real HTTP through the front door."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import httpx
import jsonschema

from shiplane.results_schema import result_schema
from tests.e2e.test_tokens_cli import AGENT, bootstrap
from tests.e2e.test_undo_keeps_writes import RENAME, RENAMED_APP, smoke_only, v2_files
from tests.support.app_repo import SHIPLANE, AppRepo, Run
from tests.support.reader import reading
from tests.support.wait import wait_for

# A tiny app. CRASH_AFTER: it exits that many seconds after the first request that came
# through the front door (X-Forwarded-For), so it passes every check before the switch and
# then crash-loops (CRASH_IN: 3 s, in the environment it names). FAIL_EVERY: every Nth request
# to /api answers 500. /boom always 500s. SICK_AFTER: like CRASH_AFTER, but the health route
# starts answering 503 instead (the process lives on, everything else answers).
APP = """\
import os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

here = os.path.dirname(os.path.abspath(__file__))
def setting(name):
    path = os.path.join(here, name)
    return float(open(path).read()) if os.path.exists(path) else None

crash_after, fail_every = setting("CRASH_AFTER"), setting("FAIL_EVERY")
sick_after = setting("SICK_AFTER")
crash_in = os.path.join(here, "CRASH_IN")  # only in the environment it names
if os.path.exists(crash_in) and open(crash_in).read().strip() == os.environ.get("SHIPLANE_ENV"):
    crash_after = 3
state = {"armed": False, "api": 0, "sick": False}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = 200
        with lock:
            if crash_after and self.headers.get("X-Forwarded-For") and not state["armed"]:
                state["armed"] = True
                threading.Timer(crash_after, lambda: os._exit(1)).start()
            if sick_after and self.headers.get("X-Forwarded-For") and not state["armed"]:
                state["armed"] = True
                threading.Timer(sick_after, lambda: state.update(sick=True)).start()
            if self.path == "/healthz" and state["sick"]:
                status = 503
            if self.path == "/api":
                state["api"] += 1
                if fail_every and state["api"] % int(fail_every) == 0:
                    status = 500
            if self.path == "/boom":
                status = 500
        body = b"ok\\n" if status == 200 else b"error\\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _config(name: str, ports: dict[str, int], watch: float) -> str:
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
watch = {watch}
watch_min_requests = 20

[environments.dev]
branch = "dev"
port = {ports["dev"]}
auto_merge = true

[environments.prod]
branch = "main"
port = {ports["prod"]}
promote_from = "dev"

[[verify.check]]
name = "home"
kind = "http"
group = "smoke"
path = "/"
"""


def tiny_app(app_repo: AppRepo, watch: float) -> None:
    for stale in ("migrations", "templates", "e2e"):
        app_repo.git("rm", "-rq", "--cached", stale)
    (app_repo.path / "shiplane.toml").write_text(_config(app_repo.name, app_repo.ports, watch))
    app_repo.commit("a tiny app", {"app.py": APP})
    first = app_repo.shiplane("deploy", "dev", "--wait-watch")
    assert first.code == 0, first.stdout
    assert first.data["watch"]["state"] == "clean", first.data["watch"]


def deploy_renaming_v2_that_fails(app_repo: AppRepo) -> Run:
    """Commit a v2 on dev that renames a column (going back would need its destructive
    `down`) and has a route answering 500, and deploy it with `--wait-watch` while a client
    reads that route: the watch sees the 5xx rate and can only alert."""
    app_repo.git("checkout", "-q", "dev")
    boom = {'@app.get("/healthz")': '@app.get("/boom")\ndef boom():\n    abort(500)\n\n\n'
            '@app.get("/healthz")'}  # fmt: skip
    app_repo.commit("v2: labels, and a route that fails", v2_files(app_repo, RENAME,
                    {**RENAMED_APP, **boom}))  # fmt: skip
    with reading(app_repo.url("dev", "/boom"), pause=0.05):
        return app_repo.shiplane("deploy", "dev", "--wait-watch")


def serving_sha(app_repo: AppRepo, env: str = "dev") -> str:
    return str(httpx.get(app_repo.url(env, "/_deploy/version"), timeout=5).json()["sha"])


def deployment(app_repo: AppRepo, deployment_id: str) -> dict[str, Any]:
    history = app_repo.shiplane("history", "dev", "--limit", "10").data["deployments"]
    return next(d for d in history if d["id"] == deployment_id)


def test_a_version_that_crashes_after_the_switch_is_rolled_back_by_the_watch(
    app_repo: AppRepo,
) -> None:
    tiny_app(app_repo, watch=10)
    good = serving_sha(app_repo)
    app_repo.commit("crashes 3 s after the switch", {"CRASH_AFTER": "3"})
    with reading(app_repo.url("dev", "/")) as reader:
        time.sleep(0.5)
        started = time.monotonic()
        run = app_repo.shiplane("deploy", "dev", "--wait-watch")
        finished = time.monotonic()
        time.sleep(1)
    assert run.code == 4, run.stdout
    watch = run.data["watch"]
    assert watch["state"] == "rolled_back" and "crashed" in watch["reason"], watch
    assert run.data["error"]["step"] == "watch" and run.data["error"]["rollback_id"]
    assert run.data["error"]["rollback_id"] == watch["rollback_id"]
    # The published envelope holds for a deploy the watch failed: ok false, exit 4, an error.
    assert list(jsonschema.Draft202012Validator(result_schema()).iter_errors(run.data)) == []
    assert serving_sha(app_repo) == good
    watched = deployment(app_repo, run.data["deployment_id"])
    assert watched["outcome"] == "rolled_back_after_watch", watched
    rollback = deployment(app_repo, watch["rollback_id"])
    assert rollback["kind"] == "rollback" and rollback["actor"] == "server:watch", rollback
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]
    assert status["watch"]["state"] == "rolled_back" and status["sha"] == good, status["watch"]
    # The crash window: requests that failed between the crash and the rollback's switch.
    window = reader.failed_at[-1] - reader.failed_at[0] if reader.failed_at else 0.0
    print(
        f"\ncrash watch: {len(reader.failures)} of {reader.ok + len(reader.failures)} requests "
        f"failed over {window:.2f}s; deploy+watch took {finished - started:.1f}s"
    )
    assert reader.ok > 0
    # Everything after the rollback's switch is served again: the last failure is well
    # before the end of the run.
    assert not reader.failed_at or reader.failed_at[-1] < finished


def test_a_version_that_fails_a_fifth_of_its_requests_is_rolled_back(app_repo: AppRepo) -> None:
    tiny_app(app_repo, watch=15)
    good = serving_sha(app_repo)
    # A host with client tokens: the watch's rollback is the server's own, it needs none.
    _person, agent = bootstrap(app_repo)
    app_repo.env = {**app_repo.env, "SHIPLANE_TOKEN": agent, **AGENT}
    app_repo.commit("500 on every 5th request", {"FAIL_EVERY": "5"})
    with reading(app_repo.url("dev", "/api"), pause=0.02):
        run = app_repo.shiplane("deploy", "dev", "--wait-watch")
    assert run.code == 4, run.stdout
    watch = run.data["watch"]
    assert watch["state"] == "rolled_back" and "5xx rate" in watch["reason"], watch
    assert watch["detail"]["sample"]["answered"] >= 20, watch
    assert serving_sha(app_repo) == good


def test_a_handful_of_errors_below_the_minimum_does_not_roll_back(app_repo: AppRepo) -> None:
    tiny_app(app_repo, watch=4)
    app_repo.commit("same app, v2", {"VERSION": "2\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    assert run.data["watch"]["state"] == "running", run.data["watch"]
    assert run.data["evidence"]["counts"] is False
    assert run.data["evidence"]["missing"].startswith("watch running until"), run.data
    assert run.data["evidence"]["next_action"].endswith("then shiplane promote prod")
    # A client provokes errors: five 500s, far below watch_min_requests.
    for _ in range(5):
        assert httpx.get(app_repo.url("dev", "/boom"), timeout=5).status_code == 500

    def ended() -> dict[str, Any] | None:
        watch = app_repo.shiplane("status", "dev").data["envs"]["dev"]["watch"]
        return watch if watch["state"] != "running" else None

    assert wait_for(ended, 20)
    watch = ended()
    assert watch is not None and watch["state"] == "clean", watch
    assert serving_sha(app_repo) == run.data["sha"]


def test_deploy_evidence_lets_promote_through_after_a_clean_watch_not_before(
    app_repo: AppRepo,
) -> None:
    tiny_app(app_repo, watch=5)
    app_repo.commit("v2", {"VERSION": "2\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    early = app_repo.shiplane("promote", "prod")
    assert early.code == 6, early.stdout
    assert "watch running until" in early.data["error"]["message"], early.data["error"]
    waited = app_repo.shiplane("deploy", "dev", "--wait-watch", "--redeploy")
    assert waited.code == 0, waited.stdout
    assert waited.data["watch"]["state"] == "clean"
    evidence = waited.data["evidence"]
    assert evidence["counts"] is True and evidence["missing"] is None, evidence
    assert evidence["next_action"] == "shiplane promote prod"
    promoted = app_repo.shiplane("promote", "prod")
    assert promoted.code == 0, promoted.stdout
    assert promoted.data["evidence"]["kind"] == "deploy"
    assert promoted.data["evidence"]["deployment_id"] == waited.data["deployment_id"]
    assert serving_sha(app_repo, "prod") == run.data["sha"]


def test_a_watch_that_would_need_a_destructive_down_alerts_and_keeps_serving(
    app_repo: AppRepo,
) -> None:
    smoke_only(app_repo)
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("[deploy]\n", "[deploy]\nwatch = 15\nwatch_min_requests = 20\n")
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    # A note the old code reads back by its old column: it fails on v2's schema.
    created = httpx.post(app_repo.url("dev", "/api/notes"), json={"title": "kept"}, timeout=5)
    assert created.status_code == 201
    run = deploy_renaming_v2_that_fails(app_repo)
    assert run.code == 5, run.stdout
    watch = run.data["watch"]
    assert watch["state"] == "alert" and "5xx rate" in watch["reason"], watch
    assert "down" in watch["detail"]["not_rolled_back"], watch
    # v2 serves on, on its schema: nothing was reverted.
    assert serving_sha(app_repo) == run.data["sha"]
    assert httpx.get(app_repo.url("dev", "/api/notes"), timeout=5).status_code == 200
    history = app_repo.shiplane("history", "dev").data
    alerts = [e for e in history["gate_events"] if e["command"] == "watch"]
    assert alerts and alerts[0]["outcome"] == "alert", history["gate_events"]
    assert alerts[0]["detail"]["deployment_id"] == run.data["deployment_id"]


def test_a_server_killed_during_a_watch_ends_it_interrupted_and_no_evidence(
    app_repo: AppRepo,
) -> None:
    tiny_app(app_repo, watch=4)
    config = app_repo.path / "shiplane.toml"
    config.write_text(config.read_text().replace("watch = 4", "watch = 60"))
    app_repo.commit("v2", {"VERSION": "2\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0 and run.data["watch"]["state"] == "running", run.stdout
    os.kill(int((app_repo.home / "server.pid").read_text()), signal.SIGKILL)
    assert app_repo.shiplane("server").code == 0
    assert wait_for(lambda: serving_sha(app_repo) == run.data["sha"], 60)
    # Not resumed: what it had counted died with the server; a person verifies instead.
    watch = app_repo.shiplane("status", "dev").data["envs"]["dev"]["watch"]
    assert watch["state"] == "interrupted", watch
    refused = app_repo.shiplane("promote", "prod")
    assert refused.code == 6, refused.stdout
    assert "its watch ended interrupted" in refused.data["error"]["message"]
    assert app_repo.shiplane("verify", "dev").code == 0
    assert app_repo.shiplane("promote", "prod").code == 0


def test_the_watch_outlives_a_killed_client_that_waited_for_it(app_repo: AppRepo) -> None:
    tiny_app(app_repo, watch=10)
    good = serving_sha(app_repo)
    app_repo.commit("crashes 3 s after the switch", {"CRASH_AFTER": "3"})
    client = subprocess.Popen(
        [*SHIPLANE, "deploy", "dev", "--wait-watch"],
        cwd=app_repo.path,
        env=app_repo.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def watching() -> bool:
            watch = app_repo.shiplane("status", "dev").data["envs"]["dev"]["watch"]
            return watch["state"] == "running" and watch["deployment_id"] != first_watch

        first_watch = app_repo.shiplane("status", "dev").data["envs"]["dev"]["watch"][
            "deployment_id"
        ]
        assert wait_for(watching, 60)
        client.send_signal(signal.SIGKILL)
    finally:
        client.kill()
        client.wait(timeout=30)

    def ended() -> dict[str, Any] | None:
        watch = app_repo.shiplane("status", "dev").data["envs"]["dev"]["watch"]
        return watch if watch["state"] != "running" else None

    assert wait_for(ended, 30)
    watch = ended()
    assert watch is not None and watch["state"] == "rolled_back", watch
    assert serving_sha(app_repo) == good


def test_a_promotion_that_crashes_in_the_gated_env_is_rolled_back_there(
    app_repo: AppRepo,
) -> None:
    tiny_app(app_repo, watch=8)
    # The first deploy's clean watch is its evidence: no `verify dev` needed.
    first = app_repo.shiplane("promote", "prod", "--wait-watch")
    assert first.code == 0, first.stdout
    assert first.data["evidence"]["kind"] == "deploy", first.data["evidence"]
    good = serving_sha(app_repo, "prod")
    app_repo.commit("crashes in prod only", {"CRASH_IN": "prod"})
    dev = app_repo.shiplane("deploy", "dev", "--wait-watch")
    assert dev.code == 0 and dev.data["evidence"]["counts"] is True, dev.stdout
    promoted = app_repo.shiplane("promote", "prod", "--wait-watch")
    assert promoted.code == 4, promoted.stdout
    assert promoted.data["watch"]["state"] == "rolled_back", promoted.data["watch"]
    assert serving_sha(app_repo, "prod") == good
    history = app_repo.shiplane("history", "prod").data["deployments"]
    rollback = next(d for d in history if d["id"] == promoted.data["error"]["rollback_id"])
    assert rollback["actor"] == "server:watch" and rollback["outcome"] == "succeeded"


def test_a_version_whose_health_probes_fail_is_rolled_back(app_repo: AppRepo) -> None:
    tiny_app(app_repo, watch=12)
    good = serving_sha(app_repo)
    app_repo.commit("health fails 2 s after the switch", {"SICK_AFTER": "2"})
    run = app_repo.shiplane("deploy", "dev", "--wait-watch")
    assert run.code == 4, run.stdout
    watch = run.data["watch"]
    assert watch["state"] == "rolled_back" and "health probes" in watch["reason"], watch
    assert serving_sha(app_repo) == good


def test_a_watch_turned_off_or_shortened_does_not_open_prod(app_repo: AppRepo) -> None:
    """The watch is part of prod's protection: `watch = 0` in the working tree is a loosening
    (refused until a person runs `shiplane protect prod`), and a dev deploy that was watched
    less than deploy.watch, or not at all, is no evidence for promoting it."""
    tiny_app(app_repo, watch=5)
    app_repo.commit("v2", {"VERSION": "2\n"})
    assert app_repo.shiplane("deploy", "dev", "--wait-watch").code == 0
    first = app_repo.shiplane("promote", "prod")
    assert first.code == 0, first.stdout  # prod's protection is pinned, the watch with it
    config = app_repo.path / "shiplane.toml"
    good = config.read_text()
    config.write_text(good.replace("watch = 5", "watch = 0"))
    app_repo.commit("v3", {"VERSION": "3\n"})
    unwatched = app_repo.shiplane("deploy", "dev")
    assert unwatched.code == 0 and unwatched.data["watch"]["state"] == "disabled", unwatched.stdout
    off = app_repo.shiplane("promote", "prod")
    assert off.code == 6 and off.data["error"]["step"] == "protect", off.stdout
    assert "deploy.watch 5 -> 0" in off.data["error"]["message"]
    config.write_text(good)  # the pinned watch again: the unwatched deploy is no evidence
    no_watch = app_repo.shiplane("promote", "prod")
    assert no_watch.code == 6, no_watch.stdout
    assert "it had no watch after its switch" in no_watch.data["error"]["message"]
    config.write_text(good.replace("watch = 5", "watch = 1"))
    short = app_repo.shiplane("deploy", "dev", "--redeploy", "--wait-watch")
    assert short.code == 0 and short.data["watch"]["state"] == "clean", short.stdout
    config.write_text(good)
    shortened = app_repo.shiplane("promote", "prod")
    assert shortened.code == 6, shortened.stdout
    assert "its watch lasted 1s; deploy.watch is 5s" in shortened.data["error"]["message"]
    assert serving_sha(app_repo, "prod") == first.data["sha"]  # prod never moved
