"""Enforced mode: children start through the privileged broker (``shiplane.server.broker``) as
their environment's user. The server passes the stdio descriptors; the broker reports exits."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from shiplane.launch.base import NULL, PIPE, STDOUT, Child, Launcher, RunAs
from shiplane.procenv import die_with_parent

MAX_MESSAGE = 1024 * 1024
REPLY_TIMEOUT = 60.0


class BrokerGone(OSError):
    pass


class BrokeredChild(Child):
    def __init__(self, broker: BrokerLauncher, pid: int) -> None:
        self.broker = broker
        self.pid = pid
        self.stdout: IO[bytes] | None = None
        self.stderr: IO[bytes] | None = None
        self.code: int | None = None
        self.ended = threading.Event()

    @property
    def returncode(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        if not self.ended.wait(timeout):
            raise TimeoutError(f"pid {self.pid} still runs after {timeout}s")
        assert self.code is not None
        return self.code

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(BrokerGone):
            self.broker.call({"op": "signal", "pid": self.pid, "sig": int(sig)})


class BrokerLauncher(Launcher):
    separates_users = True

    def __init__(self, sock: socket.socket, process: subprocess.Popen[bytes] | None = None) -> None:
        self.sock = sock
        self.process = process
        self.send_lock = threading.Lock()
        self.ids = itertools.count(1)
        self.replies: dict[int, tuple[threading.Event, dict[str, Any]]] = {}
        self.children: dict[int, BrokeredChild] = {}
        self.users: set[str] = set()
        self.lock = threading.Lock()
        self.gone = False
        threading.Thread(target=self._read, name="broker-reader", daemon=True).start()

    @classmethod
    def start(cls, root: Path, apps_group: str, server_user: str) -> BrokerLauncher:
        """Start the broker (call this while still root, before dropping privileges)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = subprocess.Popen(
            [sys.executable, "-m", "shiplane.server.broker", str(theirs.fileno()), str(root),
             apps_group, server_user],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        theirs.close()
        return cls(ours, process)

    def close(self, timeout: float = 10.0) -> None:
        """End the broker: it stops the children it still runs and exits."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    # transport -----------------------------------------------------------------------------
    def call(self, request: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        if self.gone:
            raise BrokerGone("the shiplane broker is gone")
        ident = next(self.ids)
        done = threading.Event()
        slot: dict[str, Any] = {}
        with self.lock:
            self.replies[ident] = (done, slot)
        payload = json.dumps({**request, "id": ident}).encode()
        try:
            with self.send_lock:
                socket.send_fds(self.sock, [payload], fds or [])
        except OSError as exc:
            raise BrokerGone(f"the shiplane broker is gone: {exc}") from exc
        if not done.wait(REPLY_TIMEOUT):
            raise BrokerGone("the shiplane broker did not answer")
        if "error" in slot:
            raise OSError(f"the broker refused: {slot['error']}")
        return slot

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self.lock:
                if message.get("event") == "exit":
                    child = self.children.pop(int(message["pid"]), None)
                    if child is not None:
                        child.code = int(message["code"])
                        child.ended.set()
                    continue
                done, slot = self.replies.pop(int(message["id"]))
            slot.update(message)
            if "pid" in message and "error" not in message:
                with self.lock:
                    self.children[int(message["pid"])] = slot["child"] = BrokeredChild(
                        self, int(message["pid"])
                    )
            done.set()
        self.gone = True
        with self.lock:
            for done, slot in self.replies.values():
                slot["error"] = "the broker is gone"
                done.set()
            for child in self.children.values():
                child.code = -9
                child.ended.set()

    # Launcher --------------------------------------------------------------------------------
    def ensure_user(self, run_as: RunAs) -> str:
        user = run_as.user
        if user not in self.users:
            self.call({"op": "ensure_user", "user": user})
            self.users.add(user)
        return user

    def prepare(self, path: Path, run_as: RunAs | None) -> None:
        if run_as is None:
            return
        user = self.ensure_user(run_as)
        kind = "shared" if path.name == "shared" else "release"
        # The environment's user must pass through the server's dirs above it to reach it:
        # search (x) only, so it cannot list them or open what is 0600 in them.
        for parent in path.parents:
            if parent.stat().st_uid == os.getuid():
                parent.chmod(parent.stat().st_mode & 0o7700 | 0o711)
            if parent.name == "apps":
                break
        self.call({"op": "own", "path": str(path), "user": user, "kind": kind})

    def spawn(
        self,
        argv: list[str],
        *,
        run_as: RunAs | None,
        cwd: Path | str,
        env: dict[str, str],
        stdout: str = PIPE,
        stderr: str = PIPE,
    ) -> Child:
        if run_as is None:
            raise OSError("enforced mode runs app code only as an environment's user")
        user = self.ensure_user(run_as)
        ours: dict[str, int] = {}
        theirs: list[int] = []
        try:
            theirs.append(os.open(os.devnull, os.O_RDONLY))
            for name, how in (("stdout", stdout), ("stderr", stderr)):
                if how == PIPE:
                    read_end, write_end = os.pipe()
                    ours[name] = read_end
                    theirs.append(write_end)
                elif how == STDOUT and name == "stderr":
                    theirs.append(os.dup(theirs[1]))
                elif how == NULL:
                    theirs.append(os.open(os.devnull, os.O_WRONLY))
                else:
                    raise ValueError(f"{name}={how!r}")
            reply = self.call(
                {"op": "spawn", "user": user, "argv": argv, "cwd": str(cwd), "env": env},
                theirs,
            )
        except BaseException:
            for fd in ours.values():
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        child: BrokeredChild = reply["child"]
        if "stdout" in ours:
            child.stdout = os.fdopen(ours["stdout"], "rb")
        if "stderr" in ours:
            child.stderr = os.fdopen(ours["stderr"], "rb")
        return child
