"""Schema changes under the hold: wrk against a database-reading route, plus a writer, during N
deploy+rollback cycles of a migration the old code cannot run on (a column rename).

Run: .venv/bin/python bench/schema_rollback.py [--cycles 20]
Each deploy holds new requests from its migration to its switch; each rollback runs `down`
inside a hold (the old release fails on the renamed column). Prints non-2xx responses and
socket errors (wrk's and the writer's), lost writes, wrk's p50/p99 latency, the longest hold,
and deploy and rollback wall times against the app's own start-to-healthy time.
"""

from __future__ import annotations

import argparse
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from deploy import _run_cmd, app_start_to_healthy
from example import ROOT, Example, example

sys.path.insert(0, str(ROOT))
from tests.support.writer import writing  # the tests' writer, reused

SMOKE = """
[[verify.check]]
name = "home page"
kind = "http"
group = "smoke"
path = "/"
contains = ["<h1>Notes</h1>"]
"""
# Not backward compatible: the old code reads `tags`.
RENAME = (
    "ALTER TABLE notes RENAME COLUMN tags TO labels;\n"
    "-- down\nALTER TABLE notes RENAME COLUMN labels TO tags;\n"
)


def v2(app: Example) -> None:
    """v2 renames `tags` to `labels`, and its code reads and writes `labels`."""
    source = (app.repo / "app.py").read_text()
    for old, new in {
        "INSERT INTO notes (title, body, tags)": "INSERT INTO notes (title, body, labels)",
        '"tags": row["tags"]}': '"tags": row["labels"]}',
    }.items():
        assert old in source, old
        source = source.replace(old, new)
    (app.repo / "app.py").write_text(source)
    (app.repo / "migrations" / "003_labels.sql").write_text(RENAME)
    (app.repo / "VERSION").write_text("2.0.0\n")
    app.git("add", "-A")
    app.git("commit", "-qm", "v2: labels")


def wrk_figures(out: str) -> dict[str, str]:
    def find(pattern: str, default: str = "?") -> str:
        match = re.search(pattern, out)
        return match.group(1) if match else default

    return {
        "requests": find(r"(\d+) requests in"),
        "non2xx": find(r"Non-2xx or 3xx responses: (\d+)", "0"),
        "errors": find(r"Socket errors: (.*)", "none"),
        "p50": find(r"\s50%\s+(\S+)"),
        "p99": find(r"\s99%\s+(\S+)"),
        "max": find(r"Latency\s+\S+\s+\S+\s+(\S+)"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--connections", type=int, default=4, help="wrk -c")
    args = parser.parse_args()
    deploys: list[float] = []
    rollbacks: list[float] = []
    holds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="shiplane-bench-") as scratch:
        work = Path(scratch)
        app = example(work, checks=False)
        config = app.repo / "shiplane.toml"
        config.write_text(config.read_text() + SMOKE)
        app.git("commit", "-qam", "smoke check only")
        try:
            app.shiplane("deploy", "dev")
            base = f"http://127.0.0.1:{app.port}"
            note = httpx.post(f"{base}/api/notes", json={"title": "read"}, timeout=10).json()
            v2(app)
            url = f"{base}/api/notes/{note['id']}"
            wrk = subprocess.Popen(
                # wrk gives up on a request after 2 s by default: a held one waits longer.
                [
                    "wrk",
                    "-t1",
                    f"-c{args.connections}",
                    "-d3600s",
                    "--timeout",
                    "35s",
                    "--latency",
                    url,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            started = time.perf_counter()
            with writing(base) as writer:
                for _ in range(args.cycles):
                    elapsed, data = app.shiplane("deploy", "dev", "--include-rolled-back")
                    deploys.append(elapsed)
                    holds.append(float(data.get("hold_seconds") or 0))
                    elapsed, data = app.shiplane("rollback", "dev")
                    rollbacks.append(elapsed)
                    holds.append(float(data["database"].get("hold_seconds") or 0))
            wall = time.perf_counter() - started
            wrk.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
            out, _ = wrk.communicate(timeout=60)
            env_dir = work / "home" / "apps" / "notes" / "dev"
            db = env_dir / "shared" / "notes.db"
            conn = sqlite3.connect(db)
            stored = {row[0] for row in conn.execute("SELECT id FROM notes")}
            conn.close()
            release = min((env_dir / "releases").iterdir())
            starts = [
                app_start_to_healthy(release, _run_cmd(config), f"sqlite:///{db}") for _ in range(5)
            ]
        finally:
            app.stop()
    figures = wrk_figures(out)
    lost = set(writer.acked) - stored
    start = statistics.median(starts)
    deploy, rollback = statistics.median(deploys), statistics.median(rollbacks)
    rows = [
        ("cycles (deploy + rollback, rename)", f"{args.cycles} in {wall:.0f} s"),
        (f"wrk -t1 -c{args.connections} GET /api/notes/ID requests", figures["requests"]),
        ("wrk non-2xx", figures["non2xx"]),
        ("wrk socket errors", figures["errors"]),
        ("wrk latency p50 / p99 / max", f"{figures['p50']} / {figures['p99']} / {figures['max']}"),
        ("writer: acknowledged / failed", f"{len(writer.acked)} / {len(writer.failures)}"),
        ("lost writes", str(len(lost))),
        ("longest hold", f"{max(holds):.2f} s"),
        ("median hold (deploy / rollback)", f"{_median(holds[0::2])} / {_median(holds[1::2])}"),
        ("app start-to-healthy (median of 5)", f"{start * 1000:.0f} ms"),
        ("deploy wall time (median)", f"{deploy * 1000:.0f} ms = {deploy / start:.1f} x start"),
        (
            "rollback wall time (median)",
            f"{rollback * 1000:.0f} ms = {rollback / start:.1f} x start",
        ),
    ]
    for name, value in rows:
        print(f"{name:44} {value}")
    if writer.failures:
        print(f"writer failures (first 5): {writer.failures[:5]}")


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s" if values else "-"


if __name__ == "__main__":
    main()
