"""Deploy benchmark: tool overhead, rollback time, and failed requests under a steady client.

Run: .venv/bin/python bench/deploy.py [--cycles N]
Prints, from one run on this machine:
  * deploy wall time vs the app's own start-to-healthy time (measured on the same release dir,
    started by hand with the same command) -> the tool's overhead;
  * rollback wall time;
  * failed/total requests of a client loop during N deploy+rollback cycles.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from example import example, free_port


def app_start_to_healthy(release_dir: Path, run_cmd: str, db_url: str) -> float:
    port = free_port()
    argv = shlex.split(run_cmd.replace("{port}", str(port)))
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": db_url,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=release_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shiplane-bench-"))
    app_repo = example(work)
    port, config = app_repo.port, app_repo.repo / "shiplane.toml"
    try:
        first, _ = app_repo.shiplane("deploy", "dev")
        (app_repo.repo / "VERSION").write_text("2.0.0\n")
        app_repo.git("commit", "-qam", "v2")
        deploys, rollbacks, verifies = [], [], []
        steps: dict[str, list[float]] = {"health": [], "drain": []}
        stop = threading.Event()
        counts = {"total": 0, "failed": 0}

        def client() -> None:
            with httpx.Client(timeout=10) as http:
                while not stop.is_set():
                    counts["total"] += 1
                    try:
                        if http.get(f"http://127.0.0.1:{port}/api/version").status_code != 200:
                            counts["failed"] += 1
                    except httpx.HTTPError:
                        counts["failed"] += 1

        thread = threading.Thread(target=client)
        thread.start()
        try:
            for _ in range(args.cycles):
                elapsed, data = app_repo.shiplane("deploy", "dev", "--include-rolled-back")
                deploys.append(elapsed)
                verify_ms = sum(s["duration_ms"] for s in data["steps"] if s["name"] == "verify")
                verifies.append(verify_ms / 1000)
                for step in data["steps"]:
                    if step["name"] in steps:
                        steps[step["name"]].append(step["duration_ms"] / 1000)
                rollbacks.append(app_repo.shiplane("rollback", "dev")[0])
        finally:
            stop.set()
            thread.join()
        release = next((work / "home" / "apps" / "notes" / "dev" / "releases").iterdir())
        db = work / "home" / "apps" / "notes" / "dev" / "shared" / "notes.db"
        starts = [
            app_start_to_healthy(release, _run_cmd(config), f"sqlite:///{db}") for _ in range(5)
        ]
    finally:
        app_repo.stop()
    app = statistics.median(starts)
    deploy = statistics.median(deploys)
    rollback = statistics.median(rollbacks)
    print(f"{'figure':44} value")
    print(f"{'app start-to-healthy (median of 5)':44} {app * 1000:8.0f} ms")
    print(f"{'first deploy (server start + migrations)':44} {first * 1000:8.0f} ms")
    print(f"{f'deploy wall time (median of {len(deploys)})':44} {deploy * 1000:8.0f} ms")
    print(f"{'deploy / app start (ratio)':44} {deploy / app:8.2f} x")
    checks = statistics.median(verifies)
    print(f"{'  of which verify step (all checks, median)':44} {checks * 1000:8.0f} ms")
    print(f"{'deploy without verify / app start (ratio)':44} {(deploy - checks) / app:8.2f} x")
    for name, samples in steps.items():
        label = f"  of which {name} step (median)"
        print(f"{label:44} {statistics.median(samples) * 1000:8.0f} ms")
    print(f"{'deploy overhead (deploy - app start)':44} {(deploy - app) * 1000:8.0f} ms")
    print(f"{'rollback wall time (median)':44} {rollback * 1000:8.0f} ms")
    print(f"{'rollback / app start (ratio)':44} {rollback / app:8.2f} x")
    label = f"requests during {args.cycles} deploy+rollback cycles"
    print(f"{label:44} {counts['total']:8d}")
    print(f"{'failed requests':44} {counts['failed']:8d}")


def _run_cmd(config: Path) -> str:
    import tomllib

    return str(tomllib.loads(config.read_text())["app"]["run"])


if __name__ == "__main__":
    main()
