"""The cost of the client-server hop: the same operations run in this process (a direct
``api.call``) and through the server (what the CLI does: validate here, run there, stream back).

Run: .venv/bin/python bench/hop.py [--rounds N]
Prints median wall times side by side for a read (`history`) and a deploy without checks, and
the difference per operation. The target is at most 20 ms added to a deploy.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from example import example

from shiplane import api
from shiplane.caller import Caller
from shiplane.cli.remote import run_in_server
from shiplane.config.loader import load_config
from shiplane.gitops import server_repo


def timed(call: object) -> float:
    started = time.perf_counter()
    outcome = call()  # type: ignore[operator]
    elapsed = time.perf_counter() - started
    ok = outcome.ok if hasattr(outcome, "ok") else outcome.get("ok")
    if not ok:
        raise SystemExit(f"failed: {outcome}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        app = example(Path(tmp), checks=False)
        os.environ.update(app.env)
        os.chdir(app.repo)
        config = app.repo / "shiplane.toml"
        caller = Caller.from_actor("person:bench")
        try:
            app.shiplane("deploy", "dev")  # starts the server, first release, pushes the commit
            # A direct call has no client to resolve and push the commit: send what it pushed.
            dev = load_config(config).config.environments["dev"]
            source = dataclasses.asdict(server_repo.deploy_source(app.repo, dev, None))
            rows = []
            # --redeploy: the same commit again would be a no-op (already_serving).
            operations = (("history", {"env": "dev"}), ("deploy", {"env": "dev", "redeploy": True}))
            for name, args in operations:
                direct, remote = [], []
                direct_args = {**args, "source": source} if name == "deploy" else args
                for _ in range(rounds):
                    direct.append(
                        timed(partial(api.call, name, caller, config_path=config, **direct_args))
                    )
                    remote.append(
                        timed(partial(run_in_server, name, caller, config_path=config, **args))
                    )
                rows.append((name, statistics.median(direct), statistics.median(remote)))
        finally:
            app.stop()
    print(f"{'operation':<10} {'direct':>10} {'via server':>12} {'hop':>9}   ({rounds} rounds)")
    for name, direct_s, remote_s in rows:
        hop = (remote_s - direct_s) * 1000
        print(f"{name:<10} {direct_s * 1000:>8.1f}ms {remote_s * 1000:>10.1f}ms {hop:>7.1f}ms")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
