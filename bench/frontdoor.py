"""Front door overhead: the built-in proxy vs nginx vs direct-to-app, same backend, one run.

Run: .venv/bin/python bench/frontdoor.py [--seconds 5] [--connections 32] [--repeat 3] [--example]
     [--baseline DIR]  (DIR holds another checkout's ``shiplane`` package, run side by side)
     [--workers N]  (the door with ``front_door.workers = N`` vs nginx with N worker processes)
Needs Debian's wrk and nginx. Two backends: a fast one (nginx, 1 worker, `return 200`), and with
--example the example app (gunicorn, 2 workers) deployed by shiplane. nginx (1 worker, keepalive
upstream) and the front door (one process, uvloop, as the server runs it) proxy to the very same
backend. Also: the front door's peak memory during a 200 MB upload, its descriptors with 3000
slow clients held at the connection caps, and the parser cost (httptools vs h11).

The machine is shared, so each of the ``--repeat`` rounds runs the three targets side by side and
the summary takes the median of the per-round ratios. Also per target: CPU time per request (the
serving process's utime + stime over the requests wrk counted) and p50 at -c1, which move less
with the machine's load than req/s does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from example import SHIPLANE, example, free_port

NGINX = """daemon off;
worker_processes {workers};
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
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
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


FAST_BACKEND = """daemon off;
worker_processes 1;
pid {work}/backend.pid;
error_log {work}/backend-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "ok\\n"; }}
  }}
}}
"""


def serve_door(upstream_port: int, workers: int = 1) -> None:
    """A front door in this process, as the server runs it (uvloop); prints its port. With
    ``workers`` > 1, this process keeps the state and that many worker processes serve."""
    import asyncio
    import socket
    import sys
    from dataclasses import replace

    import uvloop

    from shiplane.frontdoor.base import Upstream
    from shiplane.frontdoor.builtin import BuiltinFrontDoor
    from shiplane.frontdoor.settings import MIB, DoorSettings, Limits

    async def run() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Listener.bind does
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        port = sock.getsockname()[1]

        async def hook(*_: object) -> tuple[int, dict[str, object]]:
            return 404, {}

        settings = DoorSettings(port=port, limits=Limits(max_body=300 * MIB), workers=workers)
        door: BuiltinFrontDoor
        if workers > 1:
            from shiplane.frontdoor.workers import WorkerFrontDoor

            sock.close()
            door = WorkerFrontDoor("bench", replace(settings, port=0), hook)
            port = door.port
        else:
            door = BuiltinFrontDoor("bench", port, hook, settings=settings)
            door.listen(sock)
        door.switch(Upstream("fast", "127.0.0.1", upstream_port, {}))
        await door.confirmed()
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await door.close()

    uvloop.run(run())


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Discard(BaseHTTPRequestHandler):
    """Reads a request body to its end and says how long it was."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        left, total = int(self.headers["content-length"]), 0
        while left:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                break
            total += len(data)
            left -= len(data)
        body = str(total).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def upload_and_flood(door_pid: int, door_port: int) -> dict[str, float]:
    """A 200 MB upload through a door in front of a backend that reads it all, then 3000
    slow clients against the door of the fast backend."""
    import socket
    import threading

    import httpx

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Discard)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    uploads = subprocess.Popen(
        [sys.executable, __file__, "--serve-door", str(backend.server_address[1])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert uploads.stdout is not None
        port = int(uploads.stdout.readline())
        before = peak_rss_mib(uploads.pid)
        piece = b"u" * (1 << 20)
        with httpx.Client(timeout=120) as client:
            started = time.monotonic()
            response = client.post(
                f"http://127.0.0.1:{port}/upload",
                content=(piece for _ in range(200)),
                headers={"content-length": str(200 << 20)},
            )
            seconds = time.monotonic() - started
        assert response.status_code == 200 and response.text == str(200 << 20), response.text
        after = peak_rss_mib(uploads.pid)
    finally:
        assert uploads.stdin is not None
        uploads.stdin.close()
        uploads.wait(30)
        uploads.stdout.close()  # type: ignore[union-attr]
        backend.shutdown()
        backend.server_close()
    flood = []
    for _ in range(3000):
        sock = socket.socket()
        try:
            sock.connect(("127.0.0.1", door_port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            pass
        flood.append(sock)
    time.sleep(0.5)
    descriptors = len(list(Path(f"/proc/{door_pid}/fd").iterdir()))
    for sock in flood:
        sock.close()
    return {
        "rss_before": before,
        "rss_peak": after,
        "upload_s": seconds,
        "flood_fds": descriptors,
    }


def parser_cost() -> dict[str, float]:
    import timeit

    import h11
    import httptools

    raw = (
        b"GET /api/notes?page=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\n"
        b"Accept: application/json\r\nAccept-Encoding: gzip, deflate\r\n"
        b"Cookie: session=abcdef0123456789; theme=dark\r\nConnection: keep-alive\r\n\r\n"
    )

    class Sink:
        def on_header(self, name: bytes, value: bytes) -> None:
            pass

    def with_httptools() -> None:
        httptools.HttpRequestParser(Sink()).feed_data(raw)

    def with_h11() -> None:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(raw)
        conn.next_event()

    n = 20000
    return {
        "httptools_us": timeit.timeit(with_httptools, number=n) / n * 1e6,
        "h11_us": timeit.timeit(with_h11, number=n) / n * 1e6,
        "bytes": float(len(raw)),
    }


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children (nginx's workers), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return total + sum(cpu_seconds(int(child)) for child in children)


def measured(url: str, pid: int, seconds: int, connections: int) -> dict[str, float]:
    """wrk against ``url``, with the CPU time of ``pid`` per request."""
    before = cpu_seconds(pid)
    result = wrk(url, seconds, connections)
    result["cpu_us"] = (cpu_seconds(pid) - before) / max(result["rps"] * seconds, 1) * 1e6
    return result


def start_door(
    backend: int, package_dir: str | None = None, workers: int = 1
) -> tuple[subprocess.Popen[str], int]:
    """A door process in front of ``backend``; with ``package_dir``, that directory's shiplane
    package (another checkout: the door before a change) instead of this one."""
    env = dict(os.environ)
    if package_dir is not None:
        env["PYTHONPATH"] = package_dir
    door = subprocess.Popen(
        [sys.executable, __file__, "--serve-door", str(backend), str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert door.stdout is not None
    return door, int(door.stdout.readline())


def fast_backend(
    work: Path, seconds: int, connections: int, repeat: int, baseline: str | None, workers: int
) -> tuple[list[dict[str, dict[str, float]]], dict[str, float] | None]:
    """``repeat`` rounds, each with direct, nginx and the door side by side; then memory."""
    backend, proxy = free_port(), free_port()
    (work / "backend.conf").write_text(FAST_BACKEND.format(work=work, port=backend))
    config = NGINX.format(work=work, backend=backend, port=proxy, workers=workers)
    (work / "nginx.conf").write_text(config)
    started = [
        subprocess.Popen(["nginx", "-c", str(work / name), "-p", str(work)])
        for name in ("backend.conf", "nginx.conf")
    ]
    door, door_port = start_door(backend, workers=workers)
    doors = [door]
    try:
        if baseline is not None:
            before, before_port = start_door(backend, baseline, workers)
            doors.append(before)
        time.sleep(1.0)
        pids = {
            "backend": int((work / "backend.pid").read_text()),
            "proxy": int((work / "nginx.pid").read_text()),
        }
        targets = {
            "direct (nginx return 200)": (backend, pids["backend"]),
            nginx_label(workers): (proxy, pids["proxy"]),
            "shiplane front door": (door_port, door.pid),
        }
        if baseline is not None:
            targets["front door, baseline"] = (before_port, before.pid)
        rounds = []
        for _ in range(repeat):
            results = {
                name: measured(f"http://127.0.0.1:{port}/", pid, seconds, connections)
                for name, (port, pid) in targets.items()
            }
            # One client, one request at a time: latency without queueing, steadier than req/s.
            for name, (port, _) in targets.items():
                results[name]["p50_c1"] = wrk(f"http://127.0.0.1:{port}/", 2, 1)["p50"]
            rounds.append(results)
        # Memory and descriptors are the one process's: measured with one.
        return rounds, upload_and_flood(door.pid, door_port) if workers == 1 else None
    finally:
        for process in doors:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()
            process.wait(30)
            process.stdout.close()
        for process in started:
            process.terminate()
            process.wait(timeout=30)


def nginx_label(workers: int) -> str:
    return f"nginx proxy, {workers} worker{'s' if workers > 1 else ''}"


def print_table(title: str, results: dict[str, dict[str, float]], base: str, direct: str) -> None:
    print(title)
    print(
        f"{'target':28} {'req/s':>9} {'vs nginx':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'p50 -c1':>8} {'CPU us/req':>10} {'non-2xx':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:28} {r['rps']:9.0f} {r['rps'] / results[base]['rps']:8.0%} {r['p50']:8.2f}"
            f" {r['p99']:8.2f} {r['p50_c1']:8.3f} {r['cpu_us']:10.1f} {r['non2xx']:8.0f}"
        )
    door = results["shiplane front door"]
    print(
        f"added p50 vs direct: front door {door['p50'] - results[direct]['p50']:.2f} ms,"
        f" nginx {results[base]['p50'] - results[direct]['p50']:.2f} ms;"
        f" at -c1: front door {door['p50_c1'] - results[direct]['p50_c1']:.3f} ms,"
        f" nginx {results[base]['p50_c1'] - results[direct]['p50_c1']:.3f} ms"
    )


def medians(rounds: list[dict[str, dict[str, float]]], base: str) -> dict[str, dict[str, float]]:
    """Each figure's median over the rounds; "ratio" is the median of the per-round ratios
    to ``base`` (each taken side by side), not the ratio of the medians."""
    out: dict[str, dict[str, float]] = {}
    for name in rounds[0]:
        out[name] = {
            key: statistics.median(r[name][key] for r in rounds) for key in rounds[0][name]
        }
        out[name]["ratio"] = statistics.median(r[name]["rps"] / r[base]["rps"] for r in rounds)
    return out


def main() -> None:
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--serve-door":
        serve_door(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) == 4 else 1)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="rounds, side by side each")
    parser.add_argument("--example", action="store_true", help="also the example app")
    parser.add_argument(
        "--workers", type=int, default=1, help="door workers, and as many nginx workers"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also a door from another checkout's package (e.g. `git archive REV shiplane`)",
    )
    args = parser.parse_args()
    cost = parser_cost()
    print(
        f"parse one {cost['bytes']:.0f}-byte request head: httptools {cost['httptools_us']:.1f} us,"
        f" h11 {cost['h11_us']:.1f} us"
    )
    with tempfile.TemporaryDirectory(prefix="shiplane-bench-") as scratch:
        rounds, memory = fast_backend(
            Path(scratch), args.seconds, args.connections, args.repeat, args.baseline, args.workers
        )
    base, direct = nginx_label(args.workers), "direct (nginx return 200)"
    title = f"wrk -t2 -c{args.connections} -d{args.seconds}s GET / (backend: nginx return 200)"
    for number, results in enumerate(rounds, 1):
        print_table(f"{title}, round {number} of {len(rounds)}", results, base, direct)
    summary = medians(rounds, base)
    print_table(f"{title}, medians of {len(rounds)} rounds", summary, base, direct)
    door = summary["shiplane front door"]
    print(f"front door / nginx, median of the per-round ratios: {door['ratio']:.0%}")
    if "front door, baseline" in summary:
        before = summary["front door, baseline"]
        print(
            f"baseline door / nginx: {before['ratio']:.0%}; CPU per request"
            f" {before['cpu_us']:.1f} us -> {door['cpu_us']:.1f} us"
        )
    if memory is not None:
        print(
            f"200 MB upload through the door: {memory['upload_s']:.1f} s, door peak RSS"
            f" {memory['rss_before']:.0f} MiB before -> {memory['rss_peak']:.0f} MiB after"
        )
        print(
            f"3000 slow clients held: the door process has {memory['flood_fds']:.0f}"
            " descriptors open"
        )
    if args.example:
        example_app(args)


def example_app(args: argparse.Namespace) -> None:
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
                NGINX.format(work=work, backend=backend, port=nginx_port, workers=1)
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
