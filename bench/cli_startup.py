"""CLI startup benchmark: wall time of `shiplane --help`, `status` and `history` against
`python -c pass` (the interpreter's own start), in the same run; `status` also through the
Typer app (shiplane.cli.main), the road it took before shiplane.cli.fast.

Run: .venv/bin/python bench/cli_startup.py [--rounds N]
The example app is deployed to dev first (status and history then ask a running server).
Medians of N rounds, each command in turn within a round, so machine load hits all alike.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from example import SHIPLANE, example

FULL_ROAD = "import sys; sys.argv[0] = 'shiplane'; from shiplane.cli.main import run; run()"


def wall(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shiplane-bench-cli-"))
    app = example(work)
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "shiplane --help": [*SHIPLANE, "--help"],
        "shiplane status dev": [*SHIPLANE, "status", "dev", "--json"],
        "shiplane history": [*SHIPLANE, "history", "--json"],
        # The same status through the Typer app and the full client (what every other
        # command pays), for comparison with the stdlib road above.
        "status dev, full road": [sys.executable, "-c", FULL_ROAD, "status", "dev", "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        app.shiplane("deploy", "dev")
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(wall(argv, app.repo, app.env))
    finally:
        app.stop()
    base = statistics.median(times["python -c pass"])
    print(f"{'command':24} {'median':>9} {'min':>9} {'vs python -c pass':>18}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"{name:24} {median * 1000:7.0f} ms {min(samples) * 1000:7.0f} ms "
            f"{median / base:17.1f}x"
        )


if __name__ == "__main__":
    main()
