"""A client that writes through the front door the whole time and remembers every write it saw
succeed: the witness for "an acknowledged write is sacred"."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Writer:
    url: str
    payload: Callable[[int], dict[str, Any]]
    acked: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mark(self) -> tuple[int, int]:
        """(acknowledged, failed) so far: a phase's failures are the difference of two marks."""
        with self.lock:
            return len(self.acked), len(self.failures)


@contextmanager
def writing(
    base_url: str, payload: Callable[[int], dict[str, Any]] | None = None, pause: float = 0.01
) -> Iterator[Writer]:
    """POST /api/notes without pause while the block runs; a 201's id is acknowledged."""
    writer = Writer(f"{base_url}/api/notes", payload or (lambda n: {"title": f"w{n}"}))
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = client.post(writer.url, json=writer.payload(n))
                    with writer.lock:
                        if response.status_code == 201:
                            writer.acked.append(int(response.json()["id"]))
                        else:
                            writer.failures.append(f"HTTP {response.status_code}")
                except httpx.HTTPError as exc:
                    with writer.lock:
                        writer.failures.append(type(exc).__name__)
                stop.wait(pause)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield writer
    finally:
        stop.set()
        thread.join(timeout=60)
