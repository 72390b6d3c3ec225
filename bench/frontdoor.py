"""Front door overhead: the built-in proxy vs nginx vs direct-to-app, same backend, one run.

Run: .venv/bin/python bench/frontdoor.py [--seconds 10] [--connections 32]
Needs Debian's wrk and nginx. The backend is the example app (gunicorn, 2 workers) deployed by
shiplane; nginx proxies to the very same instance port.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from example import SHIPLANE, example, free_port

NGINX = """daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  upstream app {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
  }}
}}
"""


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "errors": 0.0 if errors is None else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shiplane-bench-") as scratch:
        work = Path(scratch)
        app = example(work, checks=False)
        nginx = None
        try:
            app.shiplane("deploy", "dev")
            status = json.loads(
                subprocess.run(
                    [*SHIPLANE, "server", "status"],
                    cwd=app.repo,
                    env=app.env,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
            backend = status["envs"]["dev"]["instances"][0]["port"]
            nginx_port = free_port()
            (work / "nginx.conf").write_text(
                NGINX.format(work=work, backend=backend, port=nginx_port)
            )
            nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)])
            time.sleep(0.5)
            path = "/api/version"
            results = {
                "direct to app": wrk(
                    f"http://127.0.0.1:{backend}{path}", args.seconds, args.connections
                ),
                "nginx": wrk(
                    f"http://127.0.0.1:{nginx_port}{path}", args.seconds, args.connections
                ),
                "shiplane front door": wrk(
                    f"http://127.0.0.1:{app.port}{path}", args.seconds, args.connections
                ),
            }
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(timeout=30)
            app.stop()
    base = results["nginx"]["rps"]
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s GET /api/version (gunicorn, 2 workers)")
    print(f"{'target':22} {'req/s':>9} {'vs nginx':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        print(
            f"{name:22} {r['rps']:9.0f} {r['rps'] / base:8.0%} {r['p50']:8.2f} {r['p99']:8.2f}"
            f" {r['non2xx']:8.0f}"
        )


if __name__ == "__main__":
    main()
