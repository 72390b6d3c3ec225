"""Log rotation and reading across it (shiplane.logs_rotate, shiplane.logs_read), with real
files and real threads: writers never lose or split a line, a reader following the stream
sees each line once and in order, the files stay within max_bytes x keep, and age counts."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from shiplane.errors import ConfigError
from shiplane.logs_read import Cursor, chain, read_since, start_of, tail
from shiplane.logs_rotate import (
    DAY,
    LogRotation,
    RotatingLog,
    prune_deploy_logs,
    release_log,
    rotated,
    shared_log,
)


def _lines(path: Path) -> list[str]:
    return [line for f in chain(path) for line in f.read_text().splitlines()]


def test_writers_in_threads_lose_and_split_nothing(tmp_path: Path) -> None:
    path = tmp_path / "app-1.log"
    log = RotatingLog(path, LogRotation(max_bytes=8192, keep=100))

    def write(name: str) -> None:
        for i in range(3000):
            log.write(f"[{name}] line {i} {'x' * (i % 50)}\n".encode())

    threads = [threading.Thread(target=write, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    files = chain(path)
    assert len(files) > 20  # it rotated
    assert all(f.stat().st_size <= 8192 for f in files)
    lines = _lines(path)
    assert len(lines) == 4 * 3000
    for name in ("w0", "w1", "w2", "w3"):
        mine = [int(line.split()[2]) for line in lines if line.startswith(f"[{name}]")]
        assert mine == list(range(3000))  # each writer's lines whole and in its order


def test_only_keep_rotated_files_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "app-1.log"
    log = RotatingLog(path, LogRotation(max_bytes=4096, keep=3))
    for i in range(2000):
        log.write(f"line {i}\n".encode())
    log.close()
    names = [f.name for f in chain(path)]
    # The three newest rotated files, numbered in order, and the live log.
    last = int(names[-2].rsplit(".", 1)[1])
    assert last > 3
    assert names == [f"app-1.log.{n}" for n in (last - 2, last - 1, last)] + ["app-1.log"]
    lines = _lines(path)
    assert lines[-1] == "line 1999"
    assert [int(line.split()[1]) for line in lines] == list(range(2000 - len(lines), 2000))
    assert sum(f.stat().st_size for f in chain(path)) <= 4 * 4096


def test_a_log_rotates_by_age_and_old_rotated_files_go(tmp_path: Path) -> None:
    path = tmp_path / "app-1.log"
    now = [1_000_000.0]
    log = RotatingLog(path, LogRotation(max_age_days=2, keep=5), clock=lambda: now[0])
    log.write(b"day 0\n")
    now[0] += 1 * DAY
    log.write(b"day 1\n")
    assert chain(path) == [path]  # younger than max_age: one file
    now[0] += 1.5 * DAY
    log.write(b"day 2.5\n")  # the file is 2.5 days old: rotated first
    assert [f.read_text() for f in chain(path)] == ["day 0\nday 1\n", "day 2.5\n"]
    # A rotated file last written longer ago than max_age is deleted at the next rotation.
    os.utime(rotated(path, 1), (now[0] - 3 * DAY, now[0] - 3 * DAY))
    now[0] += 3 * DAY
    log.write(b"day 5.5\n")
    log.close()
    assert [f.read_text() for f in chain(path)] == ["day 2.5\n", "day 5.5\n"]


def test_a_follower_reads_every_line_once_across_rotations(tmp_path: Path) -> None:
    path = tmp_path / "app-r1.log"
    log = RotatingLog(path, LogRotation(max_bytes=4096, keep=100))
    cursor = start_of("r1", path)
    done = threading.Event()

    def write() -> None:
        for i in range(20000):
            log.write(f"line {i}\n".encode())
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    seen = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        finished = done.is_set()
        chunk = read_since(lambda _r: path, cursor, "r1", limit=2000)
        assert not chunk.lost
        seen += chunk.text
        cursor = chunk.cursor
        if finished and not chunk.text:
            break
    writer.join()
    assert len(chain(path)) > 10
    assert seen.splitlines() == [f"line {i}" for i in range(20000)]


def test_a_reader_too_slow_for_keep_is_told_what_was_lost(tmp_path: Path) -> None:
    path = tmp_path / "app-r1.log"
    log = RotatingLog(path, LogRotation(max_bytes=4096, keep=2))
    log.write(b"first\n")
    cursor = start_of("r1", path)
    for i in range(3000):
        log.write(f"line {i}\n".encode())
    chunk = read_since(lambda _r: path, cursor, "r1")
    assert chunk.lost is True
    assert chunk.text.startswith("line ")  # goes on from the oldest file still there


def test_a_follower_moves_on_to_the_release_that_serves_now(tmp_path: Path) -> None:
    old, new = tmp_path / "app-r1.log", tmp_path / "app-r2.log"
    old.write_text("old 1\nold 2\n")
    new.write_text("new 1\n")
    logs = {"r1": old, "r2": new}
    first = tail("r1", old, 1)
    assert first.text == "old 2\n"
    with old.open("a") as handle:
        handle.write("old 3\n")
    chunk = read_since(logs.__getitem__, first.cursor, "r2")
    assert chunk.text == "old 3\n" and chunk.cursor.release == "r2"
    chunk = read_since(logs.__getitem__, chunk.cursor, "r2")
    assert chunk.text == "new 1\n"


def test_a_cursor_that_is_not_one_is_refused() -> None:
    assert Cursor.decode(Cursor("1-abc1234", 42, 7).encode()) == Cursor("1-abc1234", 42, 7)
    for bad in ("nonsense", "r:x:1", "r:1:-1", ":1:2"):
        with pytest.raises(ConfigError) as caught:
            Cursor.decode(bad)
        assert caught.value.exit_code == 64 and caught.value.next_action


def test_deployment_logs_are_pruned_by_age_then_total_size(tmp_path: Path) -> None:
    rotation = LogRotation(max_bytes=4096, keep=2, max_age_days=14)
    now = time.time()
    for n, (age_days, size) in enumerate([(20, 100), (3, 4000), (2, 4000), (1, 2000), (0, 10)]):
        path = tmp_path / f"deploy-{n}.log"
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age_days * DAY, now - age_days * DAY))
    running = tmp_path / "deploy-running.log"
    running.write_bytes(b"y" * 5000)
    os.utime(running, (now - 30 * DAY, now - 30 * DAY))
    dropped = prune_deploy_logs(tmp_path, rotation, spare=[running], now=now)
    # deploy-0 is too old; then the oldest go until all of them fit in 2 x 4096 bytes.
    assert [p.name for p in dropped] == ["deploy-0.log", "deploy-1.log", "deploy-2.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "deploy-3.log",
        "deploy-4.log",
        "deploy-running.log",
    ]


def test_rotation_settings_are_checked() -> None:
    with pytest.raises(ValidationError):
        LogRotation(max_bytes=10)
    with pytest.raises(ValidationError):
        LogRotation.model_validate({"keep": 0})
    with pytest.raises(ValidationError):
        LogRotation.model_validate({"max_size": 5})


def _open_fds_on(path: Path) -> int:
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == str(path)
        except OSError:
            continue
    return count


def test_the_last_holder_of_a_shared_log_closes_it(tmp_path: Path) -> None:
    """Instances of one release share one writer; once the last is gone the file is closed
    (a pruned release's log must not hold its disk space)."""
    path = tmp_path / "app-1.log"
    first = shared_log(path, LogRotation())
    second = shared_log(path, LogRotation())
    assert first is second
    first.write(b"one\n")
    release_log(path)
    second.write(b"two\n")
    assert _open_fds_on(path) == 1
    release_log(path)
    assert _open_fds_on(path) == 0
    assert path.read_text() == "one\ntwo\n"
