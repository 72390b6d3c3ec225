"""Static files from the front door vs nginx serving the same files, and the relay beside them.

Run: .venv/bin/python bench/static.py [--seconds 5] [--connections 32]
Needs Debian's wrk and nginx. One door process (uvloop, as the server runs it) with a static
mount, in front of a fast backend (nginx, `return 200`); nginx (1 worker, sendfile, etag) serves
the same directory. Targets: a 10 KiB CSS file (200), the same with If-None-Match (304), a 1 MiB
file, and a relayed request beside them (what the one prefix check leaves of the relay).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from example import free_port
from frontdoor import FAST_BACKEND, measured

NGINX_STATIC = """daemon off;
worker_processes 1;
pid {work}/static.pid;
error_log {work}/static-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  include /etc/nginx/mime.types;
  server {{
    listen 127.0.0.1:{port};
    location /static/ {{ alias {files}/; expires 1h; }}
  }}
}}
"""


def serve_door(upstream_port: int, release: str) -> None:
    """A door with ``release``'s ``staticfiles`` mounted at /static; prints its port."""
    import asyncio
    import socket

    import uvloop

    from shiplane.frontdoor.base import Upstream
    from shiplane.frontdoor.builtin import BuiltinFrontDoor
    from shiplane.frontdoor.settings import DoorSettings, Limits
    from shiplane.frontdoor.static import for_release

    async def run() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        port = sock.getsockname()[1]

        async def hook(*_: object) -> tuple[int, dict[str, object]]:
            return 404, {}

        door = BuiltinFrontDoor("bench", port, hook, settings=DoorSettings(port=port))
        door.listen(sock)
        static = for_release(release, {"/static": "staticfiles"}, 3600, Limits())
        door.switch(Upstream("fast", "127.0.0.1", upstream_port, {}, static))
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await door.close()

    uvloop.run(run())


def etag_of(port: int, path: str) -> str:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}{path}").headers["etag"]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-door":
        serve_door(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-static-"))
    files = work / "release" / "staticfiles"
    files.mkdir(parents=True)
    (files / "app.css").write_bytes(b"body { color: teal }\n" * 500)  # 10.5 KB
    (files / "big.bin").write_bytes(os.urandom(1 << 20))
    backend, nginx_port = free_port(), free_port()
    (work / "backend.conf").write_text(FAST_BACKEND.format(work=work, port=backend))
    (work / "static.conf").write_text(NGINX_STATIC.format(work=work, port=nginx_port, files=files))
    started = [
        subprocess.Popen(["nginx", "-c", str(work / name), "-p", str(work)])
        for name in ("backend.conf", "static.conf")
    ]
    door = subprocess.Popen(
        [sys.executable, __file__, "--serve-door", str(backend), str(work / "release")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert door.stdout is not None
        door_port = int(door.stdout.readline())
        time.sleep(1.0)
        nginx_pid = int((work / "static.pid").read_text())
        print(f"{'target':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>10}")
        for label, path in (("10 KiB css", "/static/app.css"), ("1 MiB file", "/static/big.bin")):
            for name, port, pid in (
                ("front door", door_port, door.pid),
                ("nginx", nginx_port, nginx_pid),
            ):
                row = measured(
                    f"http://127.0.0.1:{port}{path}", pid, args.seconds, args.connections
                )
                print(
                    f"{label + ', ' + name:44} {row['rps']:9.0f} {row['p50']:8.2f} "
                    f"{row['p99']:8.2f} {row['cpu_us']:10.0f}"
                )
        relayed = measured(
            f"http://127.0.0.1:{door_port}/", door.pid, args.seconds, args.connections
        )
        print(
            f"{'relayed GET / (beside the mount), front door':44} {relayed['rps']:9.0f} "
            f"{relayed['p50']:8.2f} {relayed['p99']:8.2f} {relayed['cpu_us']:10.0f}"
        )
        etag = etag_of(door_port, "/static/app.css")
        status = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                f"If-None-Match: {etag}",
                f"http://127.0.0.1:{door_port}/static/app.css",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        print(f"If-None-Match with the door's ETag: HTTP {status}")
    finally:
        if door.stdin is not None:
            door.stdin.close()
        door.wait(30)
        for process in started:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
