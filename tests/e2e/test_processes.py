"""[processes]: a release command and a worker beside the notes app, on real processes.

The worker is the job queue's consumer without redis: the web inserts a note whose body is
'pending' (the job, enqueued through the API) and the worker marks it done, naming its release.
"""

from __future__ import annotations

import os
import signal
import tomllib
from pathlib import Path
from typing import Any

import httpx

from tests.support.app_repo import AppRepo, wait_no_children
from tests.support.examples import ROOT, example_venv, example_without_config
from tests.support.faults import without_checks
from tests.support.wait import wait_for

WORKER = """\
import os, sqlite3, time
path = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
release = os.environ["SHIPLANE_RELEASE"]
print("worker up", release, flush=True)
while True:
    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute("UPDATE notes SET body = ? WHERE body = 'pending'", ("done by " + release,))
    time.sleep(0.1)
"""
CRASHING_WORKER = 'import sys\nprint("worker cannot reach its queue", flush=True)\nsys.exit(3)\n'
RELEASE = """\
import os
import signal
import tomllib
from pathlib import Path
shared = Path(os.environ["DATABASE_URL"].removeprefix("sqlite:///")).parent
with open(shared / "released.txt", "a") as marker:
    marker.write(os.environ["SHIPLANE_RELEASE"] + "\\n")
print("release phase of", os.environ["SHIPLANE_RELEASE"])
"""
PROCESSES = """
[processes]
worker = "python worker.py"
release = "python release.py"
worker_grace = 1.5
"""


def with_processes(app: AppRepo) -> None:
    config = app.path / "shiplane.toml"
    without_checks(config)
    app.git("checkout", "-q", "dev")
    app.commit(
        "a worker and a release command",
        {
            "shiplane.toml": config.read_text() + PROCESSES,
            "worker.py": WORKER,
            "release.py": RELEASE,
        },
    )


def enqueue(app: AppRepo) -> int:
    created = httpx.post(
        app.url("dev", "/api/notes"), json={"title": "job", "body": "pending"}, timeout=5
    )
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def processed_by(app: AppRepo, note_id: int) -> str | None:
    body = httpx.get(app.url("dev", f"/api/notes/{note_id}"), timeout=5).json()["body"]
    return str(body).removeprefix("done by ") if str(body).startswith("done by ") else None


def processes(app: AppRepo) -> list[dict[str, Any]]:
    run = app.shiplane("status", "dev")
    assert run.code == 0, run.stdout + run.stderr
    listed: list[dict[str, Any]] = run.data["envs"]["dev"]["processes"]
    return listed


def worker_pids(app: AppRepo) -> list[int]:
    return sorted(p["pid"] for p in processes(app) if p["process"] == "worker")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_release_runs_and_the_new_release_worker_takes_the_jobs(app_repo: AppRepo) -> None:
    with_processes(app_repo)
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout + first.stderr
    steps = {s["name"]: s for s in first.data["steps"]}
    assert steps["release"]["status"] == "done" and steps["workers"]["status"] == "done"
    release1 = first.data["release"]
    marker = app_repo.root / "dev" / "shared" / "released.txt"
    assert marker.read_text().split() == [release1]

    job = enqueue(app_repo)
    assert wait_for(lambda: processed_by(app_repo, job) is not None, 10)
    assert processed_by(app_repo, job) == release1

    listed = processes(app_repo)
    web = [p for p in listed if p["process"] == "web"]
    workers = [p for p in listed if p["process"] == "worker"]
    assert [w["serving"] for w in web] == [True] and web[0]["release"] == release1
    assert len(workers) == 1 and workers[0]["release"] == release1
    assert workers[0]["state"] == "running" and workers[0]["restarts"] == 0
    old_pid = workers[0]["pid"]
    assert alive(old_pid)

    app_repo.commit("notes 2.0.0", {"VERSION": "2.0.0\n"})
    second = app_repo.shiplane("deploy", "dev", "--wait-drain")
    assert second.code == 0, second.stdout + second.stderr
    release2 = second.data["release"]
    assert marker.read_text().split() == [release1, release2]
    # The old worker got SIGTERM once the new one had stayed up: one worker, the new release's.
    assert wait_for(lambda: not alive(old_pid), 15)
    [worker] = [p for p in processes(app_repo) if p["process"] == "worker"]
    assert worker["release"] == release2 and worker["pid"] != old_pid
    job = enqueue(app_repo)
    assert wait_for(lambda: processed_by(app_repo, job) is not None, 10)
    assert processed_by(app_repo, job) == release2


def test_a_worker_that_crashes_at_once_fails_the_deploy_and_the_old_one_runs_on(
    app_repo: AppRepo,
) -> None:
    with_processes(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    sha = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"]
    [old_pid] = worker_pids(app_repo)

    app_repo.commit("a worker that cannot start", {"worker.py": CRASHING_WORKER})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3, run.stdout + run.stderr
    error = run.data["error"]
    assert error["step"] == "workers"
    assert "worker 'worker'" in error["message"] and "exited with code 3" in error["message"]
    assert "worker cannot reach its queue" in error["message"]
    # The switch was undone: the old release serves, its worker never stopped.
    assert httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()["sha"] == sha
    assert worker_pids(app_repo) == [old_pid] and alive(old_pid)
    job = enqueue(app_repo)
    assert wait_for(lambda: processed_by(app_repo, job) is not None, 10)


def test_a_failing_release_command_fails_the_deploy_before_anything_starts(
    app_repo: AppRepo,
) -> None:
    with_processes(app_repo)
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout
    app_repo.commit(
        "a release command that fails",
        {"release.py": 'import sys\nprint("cache warm-up failed: no such key")\nsys.exit(1)\n'},
    )
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3, run.stdout + run.stderr
    assert run.data["error"]["step"] == "release"
    assert "cache warm-up failed: no such key" in run.data["error"]["message"]
    names = [s["name"] for s in run.data["steps"]]
    assert "start" not in names and "switch" not in names
    version = httpx.get(app_repo.url("dev", "/_deploy/version"), timeout=5).json()
    assert version["release"] == first.data["release"]


def test_scale_changes_worker_counts_without_a_release(app_repo: AppRepo) -> None:
    with_processes(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    releases = sorted(os.listdir(app_repo.root / "dev" / "releases"))

    run = app_repo.shiplane("scale", "dev", "worker=2")
    assert run.code == 0, run.stdout + run.stderr
    assert run.data["counts"] == {"worker": 2}
    pids = worker_pids(app_repo)
    assert len(pids) == 2 and all(alive(p) for p in pids)

    # Supervised: a worker killed is started again, and the restart counted.
    os.kill(pids[0], signal.SIGKILL)
    assert wait_for(
        lambda: len(worker_pids(app_repo)) == 2 and pids[0] not in worker_pids(app_repo)
    )
    listed = [p for p in processes(app_repo) if p["process"] == "worker"]
    assert sorted(p["restarts"] for p in listed) == [0, 1]
    assert all(p["state"] == "running" for p in listed)

    # The counts are kept with what serves: a server that comes back runs two again.
    app_repo.stop_server()
    assert app_repo.shiplane("status", "dev").code == 0  # starts the server, which restores
    assert wait_for(lambda: len(worker_pids(app_repo)) == 2, 60)
    pids = worker_pids(app_repo)

    run = app_repo.shiplane("scale", "dev", "worker=0")
    assert run.code == 0, run.stdout + run.stderr
    assert worker_pids(app_repo) == []
    assert wait_for(lambda: not any(alive(p) for p in pids), 15)

    unknown = app_repo.shiplane("scale", "dev", "mailer=1")
    assert unknown.code == 64 and "no process 'mailer'" in unknown.data["error"]["message"]
    assert app_repo.shiplane("scale", "dev", "web=2").code == 64
    assert app_repo.shiplane("scale", "dev", "worker=lots").code == 64
    assert sorted(os.listdir(app_repo.root / "dev" / "releases")) == releases


def test_workers_stop_for_a_restore_and_a_held_migration_and_start_again(
    app_repo: AppRepo,
) -> None:
    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace(
            'migrations = "migrations"\n', 'migrations = "migrations"\nhold = true\n'
        )
    )
    with_processes(app_repo)
    assert app_repo.shiplane("deploy", "dev").code == 0
    [first] = worker_pids(app_repo)

    # A restart: fresh workers of the same release (new variables reach them too).
    restarted = app_repo.shiplane("restart", "dev")
    assert restarted.code == 0, restarted.stdout + restarted.stderr
    [second] = worker_pids(app_repo)
    assert second != first and wait_for(lambda: not alive(first), 15)

    # A checked restore: the worker stops first (its writes would be discarded), then runs again.
    backup = app_repo.shiplane("backup", "dev")
    assert backup.code == 0, backup.stdout
    restored = app_repo.shiplane("restore", "dev", backup.data["backup"]["id"], "--yes")
    assert restored.code == 0, restored.stdout + restored.stderr
    assert not alive(second)
    [third] = worker_pids(app_repo)
    assert third != second and alive(third)
    job = enqueue(app_repo)
    assert wait_for(lambda: processed_by(app_repo, job) is not None, 10)

    # A schema change under the hold: the worker stops before the hold, the new release's
    # worker starts after the switch.
    app_repo.commit(
        "v2: pinned",
        {
            "VERSION": "2.0.0\n",
            "migrations/003_pinned.sql": "ALTER TABLE notes ADD COLUMN pinned INTEGER DEFAULT 0;\n"
            "-- down\nALTER TABLE notes DROP COLUMN pinned;\n",
        },
    )
    run = app_repo.shiplane("deploy", "dev", "--hold-timeout", "20")
    assert run.code == 0, run.stdout + run.stderr
    assert run.data["hold"]["reasons"] == ["database.hold = true"]
    log = app_repo.shiplane("logs", run.data["deployment_id"]).data["log"]
    stopped = log.index("hold: stopped 1 worker(s) for the schema change")
    assert stopped < log.index("hold: new requests wait") < log.index("== workers")
    assert not alive(third)
    [worker] = [p for p in processes(app_repo) if p["process"] == "worker"]
    assert worker["release"] == run.data["release"] and alive(worker["pid"])

    # A held deploy that fails before its switch: the down runs, and the workers it stopped
    # start again (the serving release's).
    app_repo.commit(
        "v3: flagged, and an app that cannot start",
        {
            "app.py": (app_repo.path / "app.py")
            .read_text()
            .replace("import os\n", "import os\n\nraise SystemExit('v3 cannot start')\n", 1),
            "migrations/004_flagged.sql": "ALTER TABLE notes ADD COLUMN flagged INTEGER DEFAULT 0;"
            "\n-- down\nALTER TABLE notes DROP COLUMN flagged;\n",
        },
    )
    failed = app_repo.shiplane("deploy", "dev", "--hold-timeout", "20")
    assert failed.code == 3 and failed.data["error"]["step"] == "health", failed.stdout
    log = app_repo.shiplane("logs", failed.data["deployment_id"]).data["log"]
    assert "hold: stopped 1 worker(s)" in log and "started 1 worker(s) again" in log
    assert not alive(worker["pid"])
    [back] = [p for p in processes(app_repo) if p["process"] == "worker"]
    assert back["release"] == run.data["release"] and alive(back["pid"])
    job = enqueue(app_repo)
    assert wait_for(lambda: processed_by(app_repo, job) == run.data["release"], 10)


def test_flask_example_with_a_procfile_goes_through_init_and_promote(tmp_path: Path) -> None:
    """A Procfile's web, worker and release lines: `shiplane init` writes them as [processes],
    and the config deploys dev and promotes to prod with no edits."""
    venv = example_venv(ROOT / "examples" / "flask_notes" / "requirements.txt")
    app = example_without_config(tmp_path, "flask_notes")
    try:
        app.commit(
            "a Procfile",
            {
                "Procfile": "web: python -m gunicorn --bind 0.0.0.0:$PORT app:create_app()\n"
                "worker: python worker.py\nrelease: python release.py\n",
                "worker.py": WORKER,
                "release.py": RELEASE,
            },
        )
        ports = ["--dev-port", str(app.ports["dev"]), "--prod-port", str(app.ports["prod"])]
        init = app.shiplane("init", *ports, "--json", extra_env={"VIRTUAL_ENV": str(venv)})
        assert init.code == 0, init.stdout + init.stderr
        config = tomllib.loads((app.path / "shiplane.toml").read_text())
        assert config["processes"] == {
            "web": "python -m gunicorn --bind {host}:{port} app:create_app()",
            "release": "python release.py",
            "worker": "python worker.py",
        }
        app.commit("shiplane init")
        app.git("checkout", "-q", "-b", "dev")

        deploy = app.shiplane("deploy", "dev")
        assert deploy.code == 0, deploy.stdout + deploy.stderr
        release = deploy.data["release"]
        marker = app.root / "dev" / "shared" / "released.txt"
        assert marker.read_text().split() == [release]
        job = enqueue(app)
        assert wait_for(lambda: processed_by(app, job) == release, 10)

        assert app.shiplane("verify", "dev").code == 0
        promoted = app.shiplane("promote", "prod")
        assert promoted.code == 0, promoted.stdout + promoted.stderr
        prod = app.shiplane("status", "prod").data["envs"]["prod"]["processes"]
        [worker] = [p for p in prod if p["process"] == "worker"]
        assert worker["state"] == "running" and alive(worker["pid"])
        assert (app.root / "prod" / "shared" / "released.txt").is_file()
    finally:
        app.stop_server()
        wait_no_children(tmp_path)
