"""Logs that cannot fill the disk: an instance's output log rotates by size and age, and the
deployment logs of an environment are pruned by total size and age.

An app writes to a pipe the server reads (``shiplane.targets.processes``), so the server owns
the only writer of each instance log and rotates it between two lines: nothing the app wrote
is lost or split, and the app never waits on the rotation (a rename and an open). A rotated
file is ``<log>.<n>`` with ``n`` one more than the newest before it, and keeps its name until
it is deleted: a reader's position names the file by ``n`` (the live log's is the ``n`` it
will get), which neither a rename nor a reused inode can confuse (``shiplane.logs_read``)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

DAY = 86400.0


class LogRotation(BaseModel):
    """``[logs]`` in shiplane.toml; it travels with what serves (``InstanceSpec``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: int = Field(
        default=10_000_000,
        ge=4096,
        le=10_000_000_000,
        description="Bytes an instance log grows to before it rotates; the deployment logs of"
        " an environment keep at most max_bytes x keep in all.",
    )
    keep: int = Field(default=5, ge=1, le=100, description="Rotated files kept per log.")
    max_age_days: float = Field(
        default=14.0,
        gt=0,
        le=3650,
        description="A log older than this rotates; rotated files and deployment logs last"
        " written longer ago are deleted.",
    )

    @property
    def max_age(self) -> float:
        return self.max_age_days * DAY


def rotated(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


def rotated_numbers(path: Path) -> list[int]:
    """The numbers of ``path``'s rotated files, oldest first."""
    prefix = path.name + "."
    numbers = []
    if path.parent.is_dir():
        for entry in path.parent.iterdir():
            tail = entry.name[len(prefix) :]
            if entry.name.startswith(prefix) and tail.isdigit() and tail == str(int(tail)):
                numbers.append(int(tail))
    return sorted(numbers)


def live_number(numbers: list[int]) -> int:
    """The number the live log gets when it rotates."""
    return (numbers[-1] if numbers else 0) + 1


class RotatingLog:
    """One log file, written by any number of threads (every instance of a release shares
    its release's log), whole writes at a time."""

    def __init__(
        self, path: Path, rotation: LogRotation, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.rotation = rotation
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._started = 0.0

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._fd is None:
                self._open()
            too_big = self._size + len(data) > self.rotation.max_bytes
            too_old = self._clock() - self._started > self.rotation.max_age
            if self._size and (too_big or too_old):
                self._rotate()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._size += len(data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._size = os.fstat(self._fd).st_size
        # A file's birth is not kept by every file system: its age counts from when this
        # writer opened it (a server restart starts the clock again, never rotates early).
        self._started = self._clock()

    def _rotate(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        if self.path.exists():  # removed by hand: nothing to move
            self.path.rename(rotated(self.path, live_number(rotated_numbers(self.path))))
        self._open()
        numbers = rotated_numbers(self.path)
        keep = numbers[-self.rotation.keep :]
        for number in numbers[: -self.rotation.keep]:
            rotated(self.path, number).unlink(missing_ok=True)
        # The newest rotated file stays whatever its age: its number is where the next
        # rotation's comes from, which a reader's position relies on.
        drop_older_than(
            (rotated(self.path, n) for n in keep[:-1]), self._clock() - self.rotation.max_age
        )


def drop_older_than(paths: Iterable[Path], cutoff: float) -> list[Path]:
    """Delete the files in ``paths`` last written before ``cutoff``; the ones deleted."""
    dropped = []
    for path in paths:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                dropped.append(path)
        except FileNotFoundError:
            continue
    return dropped


_OPEN: dict[Path, tuple[RotatingLog, int]] = {}
_OPEN_LOCK = threading.Lock()


def shared_log(path: Path, rotation: LogRotation) -> RotatingLog:
    """The one writer of ``path`` in this process, for as long as one holder has not called
    ``release_log``: instances of one release share their log, and two writers rotating one
    file would each move the other's lines away."""
    with _OPEN_LOCK:
        log, holders = _OPEN.get(path) or (RotatingLog(path, rotation), 0)
        log.rotation = rotation  # the newest deploy's settings
        _OPEN[path] = (log, holders + 1)
        return log


def release_log(path: Path) -> None:
    """A holder is done; the last one closes the file (a pruned release's log must not stay
    open, holding its disk space)."""
    with _OPEN_LOCK:
        log, holders = _OPEN.get(path) or (None, 0)
        if log is None:
            return
        if holders > 1:
            _OPEN[path] = (log, holders - 1)
            return
        del _OPEN[path]
        log.close()


def prune_deploy_logs(
    logs_dir: Path, rotation: LogRotation, spare: Iterable[Path] = (), now: float | None = None
) -> list[Path]:
    """Delete an environment's deployment logs last written more than ``max_age`` ago, then
    the oldest while all of them together exceed ``max_bytes`` x ``keep``; ``spare`` (a
    running deployment's) is never deleted. The ones deleted, oldest first."""
    kept = {p.resolve() for p in spare}
    logs = sorted(
        (p for p in logs_dir.glob("deploy-*.log") if p.resolve() not in kept),
        key=lambda p: p.stat().st_mtime,
    )
    cutoff = (time.time() if now is None else now) - rotation.max_age
    dropped = drop_older_than(logs, cutoff)
    left = [p for p in logs if p not in dropped]
    total = sum(p.stat().st_size for p in left) + sum(p.stat().st_size for p in kept if p.exists())
    budget = rotation.max_bytes * rotation.keep
    for path in left:
        if total <= budget:
            break
        total -= path.stat().st_size
        path.unlink()
        dropped.append(path)
    return dropped
