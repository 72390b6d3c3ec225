"""Verification throughput: 200 http checks against the example app through the front door.

Run: .venv/bin/python bench/verify.py [--checks 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from example import example

from shiplane.config.checks import HttpCheck
from shiplane.verify.runner import run_checks
from shiplane.verify.target import Target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=200)
    args = parser.parse_args()
    paths = ["/api/notes", "/api/version", "/healthz", "/"]
    checks = [
        HttpCheck(
            kind="http",
            name=f"check {i}",
            path=paths[i % len(paths)],
            contains=["" if paths[i % len(paths)] != "/" else "<h1>Notes</h1>"],
        )
        for i in range(args.checks)
    ]
    with tempfile.TemporaryDirectory(prefix="shiplane-bench-") as scratch:
        app = example(Path(scratch), checks=False)
        try:
            _, data = app.shiplane("deploy", "dev")
            target = Target(
                env="dev", base_url=f"http://127.0.0.1:{app.port}", sha=data["sha"], phase="serving"
            )
            started = time.perf_counter()
            results = run_checks(checks, target)
            elapsed = time.perf_counter() - started
        finally:
            app.stop()
    passed = sum(r.status == "passed" for r in results)
    print(
        f"{len(checks)} http checks in {elapsed:.2f} s: {len(checks) / elapsed:.0f} checks/s, "
        f"{passed} passed, median {sorted(r.duration_ms for r in results)[len(results) // 2]} ms"
    )


if __name__ == "__main__":
    main()
