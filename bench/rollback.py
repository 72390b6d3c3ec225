"""Rollback benchmark: wall time of `shiplane rollback` from the CLI within the standby window
(issue 16 item 3: a front-door switch, no start, no health wait), against the usual path
(`deploy.standby = false`: start the old release, wait for health) and the app's own
start-to-healthy time, in one run.

Run: .venv/bin/python bench/rollback.py [--cycles N]
The app is the fast backend: a stdlib asyncio server answering 200 to everything, so what is
measured is shiplane's. Each cycle deploys v2 (v1 goes on standby), waits until the server's
probe finds the standby healthy, then times `shiplane rollback dev --json` end to end: N cycles
alone, N more while a client polls through the front door (about 50 requests a second; every
answer that is not a 200 counts as failed), then N with `standby = false`. The deploys of the
unpolled cycles give the deploy overhead (deploy wall time minus the app's start-to-healthy).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from deploy import app_start_to_healthy
from example import SHIPLANE, Example, committed, free_port

FAST_APP = '''"""The fast backend: answers 200 to every request, on the port given as argv[1]."""
import asyncio
import sys

BODY = ('{"version": "%s"}' % open("VERSION").read().strip()).encode()
HEAD = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n"


async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(HEAD % len(BODY) + BODY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()


asyncio.run(main())
'''

CONFIG = """[app]
name = "fast"
run = "{python} app.py {{port}}"
health = "/healthz"

[deploy]
drain_timeout = 5.0
standby = {standby}

[environments.dev]
branch = "dev"
port = {port}
"""


def fast_app(work: Path) -> Example:
    repo = work / "fast"
    repo.mkdir(parents=True)
    port = free_port()
    (repo / "app.py").write_text(FAST_APP)
    (repo / "VERSION").write_text("1.0.0\n")
    (repo / "shiplane.toml").write_text(
        CONFIG.format(python=sys.executable, port=port, standby="true")
    )
    return committed(repo, work, port)


def standby_healthy(app: Example) -> bool:
    proc = subprocess.run(
        [*SHIPLANE, "server", "status", "--json"],
        cwd=app.repo,
        env=app.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    standby = json.loads(proc.stdout)["envs"]["dev"].get("standby") or {}
    return bool((standby.get("health") or {}).get("healthy"))


def cycles(
    app: Example, count: int, warm: bool, floor: list[float], deploys: list[float]
) -> list[tuple[float, dict[str, Any]]]:
    """``count`` deploy + rollback cycles; (rollback wall time, its JSON) of each; the wall
    time of `shiplane history` before each rollback goes to ``floor``, each deploy's (no
    checks, no migrations: issue 16's "deploy overhead" case) to ``deploys``."""
    samples = []
    for _ in range(count):
        elapsed, deployed = app.shiplane("deploy", "dev", "--include-rolled-back")
        if not deployed.get("ok"):
            raise SystemExit(f"deploy failed: {deployed.get('error')}")
        deploys.append(elapsed)
        deadline = time.monotonic() + 60
        while warm and not standby_healthy(app) and time.monotonic() < deadline:
            time.sleep(0.1)
        # The floor of any command through the server, next to each rollback.
        floor.append(app.shiplane("history", "dev", "--limit", "1")[0])
        elapsed, data = app.shiplane("rollback", "dev")
        if data.get("standby") is not warm:
            raise SystemExit(
                f"rollback standby={data.get('standby')}: {data.get('standby_reason')}"
            )
        samples.append((elapsed, data))
    return samples


def server_ms(data: dict[str, Any]) -> float:
    return float(sum(s["duration_ms"] for s in data["steps"]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shiplane-bench-rollback-"))
    app = fast_app(work)
    counts = {"total": 0, "failed": 0}
    stop = threading.Event()
    floor: list[float] = []
    deploys: list[float] = []

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                counts["total"] += 1
                try:
                    if http.get(f"http://127.0.0.1:{app.port}/").status_code != 200:
                        counts["failed"] += 1
                except httpx.HTTPError:
                    counts["failed"] += 1
                # Paced: a client flat out would make the server's loop the bottleneck of
                # every command timed here (it proxies and answers the CLI in one process).
                stop.wait(0.02)

    try:
        app.shiplane("deploy", "dev")
        (app.repo / "VERSION").write_text("2.0.0\n")
        app.git("commit", "-qam", "v2")
        # Timed with no other traffic: the polling client slows the server's answers to the
        # CLI (one process proxies and answers) by more than the rollback itself takes.
        warm = cycles(app, args.cycles, True, floor, deploys)
        thread = threading.Thread(target=client)
        thread.start()
        try:
            polled = cycles(app, args.cycles, True, [], [])
        finally:
            stop.set()
            thread.join()
        config = app.repo / "shiplane.toml"
        config.write_text(config.read_text().replace("standby = true", "standby = false"))
        cold = cycles(app, args.cycles, False, floor, deploys)
        release = next((work / "home" / "apps" / "fast" / "dev" / "releases").iterdir())
        starts = [
            app_start_to_healthy(release, f"{sys.executable} app.py {{port}}", "") for _ in range(5)
        ]
    finally:
        app.stop()
    start = statistics.median(starts)
    print(f"{'figure':52} value")
    print(f"{'app start-to-healthy (median of 5)':52} {start * 1000:8.0f} ms")
    history = statistics.median(floor)
    print(f"{'shiplane history (the CLI + server floor, median)':52} {history * 1000:8.0f} ms")
    deploy = statistics.median(deploys)
    print(f"{f'deploy wall, no checks (median of {len(deploys)})':52} {deploy * 1000:8.0f} ms")
    print(f"{'  minus app start (the deploy overhead)':52} {(deploy - start) * 1000:8.0f} ms")
    runs = (("standby", warm), ("standby, client polling", polled), ("standby = false", cold))
    for label, samples in runs:
        wall = statistics.median(s[0] for s in samples)
        inside = statistics.median(server_ms(s[1]) for s in samples)
        switch = statistics.median(s[1]["switch_ms"] for s in samples)
        print(f"{f'rollback wall, {label} (median of {len(samples)})':52} {wall * 1000:8.0f} ms")
        print(f"{'  / app start (ratio)':52} {wall / start:8.2f} x")
        print(f"{'  minus the history floor':52} {(wall - history) * 1000:8.0f} ms")
        print(f"{'  of which the steps in the server (median)':52} {inside:8.0f} ms")
        print(f"{'  of which the switch step (median)':52} {switch:8.0f} ms")
        outside = statistics.median(s[0] * 1000 - server_ms(s[1]) for s in samples)
        print(f"{'  CLI start, config, hop (wall - steps, median)':52} {outside:8.0f} ms")
        names = [step["name"] for step in samples[0][1]["steps"]]
        per_step = {
            n: statistics.median(
                next(x["duration_ms"] for x in s[1]["steps"] if x["name"] == n) for s in samples
            )
            for n in names
        }
        print("  steps (median ms): " + ", ".join(f"{n} {v:g}" for n, v in per_step.items()))
    print(f"{'requests during the polled cycles':52} {counts['total']:8d}")
    print(f"{'failed requests':52} {counts['failed']:8d}")


if __name__ == "__main__":
    main()
