"""Running the server in the foreground (what `shiplane server --foreground` and systemd do)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from pathlib import Path

import uvloop

from shiplane.layout import ServerLayout
from shiplane.server.control import build_control_app
from shiplane.server.core import ServerCore
from shiplane.server.listener import Listener, unix_socket
from shiplane.server.operations import OperationRunner


def load_or_create_token(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


async def serve(layout: ServerLayout) -> None:
    layout.ensure()
    token = load_or_create_token(layout.token)
    core = ServerCore(layout, token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = OperationRunner()
    control = Listener(build_control_app(core, stop, runner), unix_socket(layout.socket))
    control.start()
    layout.pid.write_text(str(os.getpid()))
    restore = asyncio.create_task(core.restore())
    try:
        await stop.wait()
    finally:
        restore.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await restore
        runner.close()
        await core.shutdown()
        await control.stop()
        with contextlib.suppress(FileNotFoundError):
            layout.socket.unlink()
        with contextlib.suppress(FileNotFoundError):
            if layout.pid.read_text().strip() == str(os.getpid()):
                layout.pid.unlink()


def run_foreground(layout: ServerLayout) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvloop's event loop roughly doubles what the front door relays per CPU second.
    uvloop.run(serve(layout))
