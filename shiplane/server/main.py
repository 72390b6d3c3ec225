"""Running the server in the foreground (what `shiplane server --foreground` and systemd do)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
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
from shiplane.server.peercred import PeerCredProtocol
from shiplane.server.privileges import Enforcement, NotPermitted, enter
from shiplane.server.watch_sources import watch_rollback, watch_tell
from shiplane.targets import in_process


def load_or_create_token(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


class AlreadyServed(Exception):
    pass


def hold_life_lock(layout: ServerLayout) -> int:
    """One server per home: a second one (even while the first is stopped, not dead) must not
    take over its socket and ports. The kernel drops the lock when the process dies."""
    fd = os.open(layout.life_lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyServed(f"another shiplane server holds {layout.life_lock}") from None
    return fd


async def serve(layout: ServerLayout, enforcement: Enforcement | None = None) -> None:
    layout.ensure()
    life = hold_life_lock(layout)
    token = load_or_create_token(layout.token)
    core = ServerCore(layout, token, enforcement)
    core.health.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = OperationRunner()
    core.watches.use(watch_rollback(runner, layout), watch_tell(runner.notifier, layout))
    # Enforced: the clients' group connects (the directory gave the socket its group).
    socket_file = unix_socket(layout.socket, 0o660 if enforcement else 0o600)
    own_socket = os.stat(layout.socket).st_ino
    control_app = build_control_app(core, stop, runner)
    control = Listener(control_app, socket_file, http=PeerCredProtocol)
    control.start()
    # Operations running here ask this core in-process, not over the socket.
    in_process.serve(control_app, loop, layout.socket)
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
        # Remove only what is ours: the path may name a later server's socket by now.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(layout.socket).st_ino == own_socket:
                layout.socket.unlink()
        with contextlib.suppress(FileNotFoundError):
            if layout.pid.read_text().strip() == str(os.getpid()):
                layout.pid.unlink()
        os.close(life)


def run_foreground(layout: ServerLayout, enforcement: Enforcement | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if enforcement is not None:
        try:
            enter(enforcement, layout.root, layout.socket)
        except NotPermitted as exc:
            logging.getLogger("shiplane.server").error("not starting: %s", exc)
            raise SystemExit(1) from None
    # uvloop's event loop roughly doubles what the front door relays per CPU second.
    try:
        uvloop.run(serve(layout, enforcement))
    except AlreadyServed as exc:
        logging.getLogger("shiplane.server").error("not starting: %s", exc)
        raise SystemExit(1) from None
