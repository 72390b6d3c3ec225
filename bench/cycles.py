"""Zero downtime under load: wrk against the front door during N deploy+rollback cycles.

Run: .venv/bin/python bench/cycles.py [--cycles 100] [--checks]
Prints wrk's requests, non-2xx responses and socket errors for the whole run.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from example import example


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--checks", action="store_true", help="keep the example's checks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shiplane-bench-") as scratch:
        app = example(Path(scratch), checks=args.checks)
        try:
            app.shiplane("deploy", "dev")
            (app.repo / "VERSION").write_text("2.0.0\n")
            app.git("commit", "-qam", "v2")
            wrk = subprocess.Popen(
                ["wrk", "-t2", "-c16", "-d3600s", f"http://127.0.0.1:{app.port}/api/version"],
                stdout=subprocess.PIPE,
                text=True,
            )
            started = time.perf_counter()
            for _ in range(args.cycles):
                app.shiplane("deploy", "dev", "--include-rolled-back")
                app.shiplane("rollback", "dev")
            elapsed = time.perf_counter() - started
            wrk.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
            out, _ = wrk.communicate(timeout=60)
        finally:
            app.stop()
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    print(f"{args.cycles} deploy+rollback cycles in {elapsed:.0f} s, wrk -t2 -c16 throughout")
    print(f"requests         {total.group(1) if total else '?'}")
    print(f"non-2xx          {non2xx.group(1) if non2xx else 0}")
    print(f"socket errors    {errors.group(1) if errors else 'none'}")


if __name__ == "__main__":
    main()
