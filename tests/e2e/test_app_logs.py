"""Issue 14, logs that cannot fill the disk: the app's output (a real gunicorn writing an
access line per request through the server's pipe) rotates by size while it writes, a
follower (`shiplane logs --env dev --follow`) sees every line once and in order across the
rotations, the requests never wait on it, and the files on disk stay within [logs]."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.app_repo import SHIPLANE, AppRepo
from tests.support.faults import without_checks

MAX_BYTES = 16384
KEEP = 50
REQUESTS = 1500


def _loud(app_repo: AppRepo) -> None:
    """gunicorn writes an access line per request to stdout; small rotated files."""
    config = app_repo.path / "shiplane.toml"
    text = config.read_text().replace(
        "--graceful-timeout 10", "--graceful-timeout 10 --access-logfile -"
    )
    logs = f"[logs]\nmax_bytes = {MAX_BYTES}\nkeep = {KEEP}\n\n"
    config.write_text(text.replace("# Checks:", logs + "# Checks:"))
    without_checks(config)


def _markers(text: str) -> list[int]:
    return [
        int(line.split("marker=")[1].split()[0].split('"')[0])
        for line in text.splitlines()
        if "marker=" in line
    ]


def test_the_apps_output_rotates_while_a_follower_reads_every_line(app_repo: AppRepo) -> None:
    _loud(app_repo)
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout
    release = deployed.data["release"]
    logs = app_repo.root / "dev" / "logs"
    stream = app_repo.path.parent / "followed.txt"
    start = app_repo.shiplane("logs", "--env", "dev", "--lines", "0")
    assert start.code == 0 and start.data["log"] == "", start.stdout
    follow = ["logs", "--env", "dev", "--follow", "--cursor", start.data["cursor"], "--json"]
    with stream.open("wb") as sink:
        follower = subprocess.Popen(
            [*SHIPLANE, *follow],
            cwd=app_repo.path,
            env=app_repo.env,
            stdout=subprocess.PIPE,
            stderr=sink,
        )
        try:
            slowest = 0.0
            with httpx.Client(timeout=10) as client:
                for i in range(REQUESTS):
                    started = time.monotonic()
                    answer = client.get(app_repo.url("dev", f"/api/notes?marker={i}"))
                    slowest = max(slowest, time.monotonic() - started)
                    assert answer.status_code == 200, answer.text
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(_markers(stream.read_text())) < REQUESTS:
                time.sleep(0.3)
            follower.send_signal(signal.SIGTERM)
            out, _ = follower.communicate(timeout=30)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait(timeout=10)
    # Every line once, although the log rotated many times under the follower (gunicorn's
    # two workers write their lines after the response: two neighbours may swap).
    followed = _markers(stream.read_text())
    assert sorted(followed) == list(range(REQUESTS)), len(followed)
    final = json.loads(out.decode().strip().splitlines()[-1])
    assert follower.returncode == 0 and final["ok"] is True, final
    assert final["cursor"].startswith(release + ":") and final["lost"] is False
    assert final["next_action"] == f"shiplane logs --env dev --cursor {final['cursor']}"

    files = sorted(logs.glob(f"app-{release}.log*"))
    rotated = [f for f in files if not f.name.endswith(".log")]
    assert len(rotated) >= 5, [f.name for f in files]  # it did rotate, by size
    assert len(files) <= KEEP + 1
    assert all(f.stat().st_size <= MAX_BYTES for f in files)
    # The app never waited on a rotation (a request is a few ms; a blocked pipe is seconds).
    assert slowest < 5, slowest

    # Without --follow: the last lines, and a cursor from which only what is new comes.
    last = app_repo.shiplane("logs", "--env", "dev", "--lines", "3")
    assert last.code == 0, last.stdout
    # (The health monitor's probes are access lines too.)
    assert len(last.data["log"].splitlines()) == 3
    tail = _markers(last.data["log"])
    assert tail and tail == followed[-len(tail) :]
    httpx.get(app_repo.url("dev", "/api/notes?marker=9999"), timeout=10)
    newer = _wait_for_marker(app_repo, last.data["cursor"], 9999)
    assert _markers(newer) == [9999]


def _wait_for_marker(app_repo: AppRepo, cursor: str, marker: int) -> str:
    seen = ""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = app_repo.shiplane("logs", "--env", "dev", "--cursor", cursor)
        assert answer.code == 0, answer.stdout
        seen += answer.data["log"]
        cursor = answer.data["cursor"]
        if marker in _markers(seen):
            return seen
        time.sleep(0.2)
    return seen


def test_logs_needs_one_of_a_deployment_or_an_env(app_repo: AppRepo, tmp_path: Path) -> None:
    neither = app_repo.shiplane("logs", "--json")
    assert neither.code == 64 and "--env ENV" in neither.data["error"]["message"]
    before = app_repo.shiplane("logs", "--env", "dev")
    assert before.code == 64, before.stdout
    assert before.data["error"]["next_action"] == "shiplane deploy dev"
    bad = app_repo.shiplane("logs", "--env", "dev", "--cursor", "nonsense")
    assert bad.code == 64 and bad.data["error"]["step"] == "usage", bad.stdout
