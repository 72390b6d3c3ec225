"""A real HTTP receiver for notifications (apprise's json:// posts here), and one that takes
connections but never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.ports import free_port


@dataclass
class Received:
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)  # {"path", "body"}
    attempts: int = 0  # posts received, refused ones included

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"


@contextmanager
def receiver(refuse_first: int = 0) -> Iterator[Received]:
    """Records every message; the first ``refuse_first`` posts get a 503 (a webhook that is
    down for a moment)."""
    received = Received(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            received.attempts += 1
            if received.attempts <= refuse_first:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            received.messages.append({"path": self.path, "body": body})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", received.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Silent:
    port: int
    connected: list[float] = field(default_factory=list)  # time.time() of each connection


@contextmanager
def silent_receiver() -> Iterator[Silent]:
    """Accepts connections and never answers a byte (a hung webhook)."""
    silent = Silent(free_port())
    listener = socket.socket()
    listener.bind(("127.0.0.1", silent.port))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            silent.connected.append(time.time())
            held.append(conn)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield silent
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
