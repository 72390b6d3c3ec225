"""A client that reads a database-backed route through the front door the whole time: every
answer that is not a 200 (or no answer) is a failed request, and each answer's latency is kept
(the longest is how long the front door held it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx


@dataclass
class Reader:
    url: str
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    failed_at: list[float] = field(default_factory=list)  # time.monotonic() of each failure
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def reading(url: str, pause: float = 0.01) -> Iterator[Reader]:
    """GET ``url`` (a route that reads the database) while the block runs."""
    reader = Reader(url)
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = client.get(url)
                except httpx.HTTPError as exc:
                    with reader.lock:
                        reader.failures.append(type(exc).__name__)
                        reader.failed_at.append(time.monotonic())
                else:
                    with reader.lock:
                        reader.latencies.append(time.monotonic() - started)
                        if response.status_code == 200:
                            reader.ok += 1
                        else:
                            reader.failures.append(f"HTTP {response.status_code}")
                            reader.failed_at.append(time.monotonic())
                stop.wait(pause)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield reader
    finally:
        stop.set()
        thread.join(timeout=90)
