"""Loopback ports for tests, taken below the kernel's ephemeral range.

A port found by binding port 0 comes from the ephemeral range (32768-60999 here), where the kernel
also hands out the source ports of outgoing connections and the ports of instances started without
an ``instance_ports`` range. Under xdist, one of those can take a port between the moment a test
picks it and the moment its front door binds it (CI saw "port 54443 in use by another program").
Ports below the range are never handed out by the kernel, and each xdist worker draws from its own
block, so two tests never pick the same one.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

LOW = 10000
HIGH = 19999  # instance_ports tests use 20000-32000; nothing else here listens below 20000
BLOCK = 600


def _worker_index() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def _block() -> range:
    blocks = (HIGH - LOW + 1) // BLOCK
    start = LOW + (_worker_index() % blocks) * BLOCK
    return range(start, start + BLOCK)


_BLOCK = _block()
# A random start, so that a run right after another does not meet its ports in TIME_WAIT.
_CYCLE = itertools.islice(itertools.cycle(_BLOCK), random.randrange(BLOCK), None)


def free_port() -> int:
    """A loopback port nobody holds now, from this worker's block, not handed out before."""
    for _ in range(BLOCK):
        port = next(_CYCLE)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free loopback port in {_BLOCK.start}-{_BLOCK.stop - 1}")
