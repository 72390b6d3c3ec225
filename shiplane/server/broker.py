"""The enforced server's privileged broker: the one piece that stays root.

An enforced server is started by root (the supervisor), starts this broker, then drops to its
own user. The broker does exactly four things for it, each checked here, not trusted:

- ``ensure_user``: create an environment's user (``shiplane-<app>-<env>``, member of the apps
  group, no login, no home);
- ``spawn``: start a command as such a user (never root, never the server's user), in its own
  session, with the stdio descriptors the server passed (SCM_RIGHTS);
- ``signal``: signal the process group of a child it started;
- ``own``: hand a release or shared dir under ``<root>/apps/<app>/<env>/`` to that
  environment's user (the server's group keeps access), refusing any other path or user.

It talks over a SOCK_SEQPACKET socketpair (one JSON message per packet) and dies with the server
(PR_SET_PDEATHSIG), taking its children with it. Privilege separation in the manner of sshd:
the network-facing process holds no privilege, the privileged one parses nothing but this.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shiplane.launch.base import USER_PREFIX, app_user_name
from shiplane.procenv import die_with_parent

MAX_MESSAGE = 1024 * 1024
USER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# How long a finished child's group may still be signalled (its workers may outlive it).
FORGET_AFTER = 300.0


class Refused(Exception):
    pass


class Broker:
    def __init__(self, sock: socket.socket, root: Path, apps_group: str, server_user: str) -> None:
        self.sock = sock
        self.root = root.resolve()
        self.apps_group = apps_group
        self.server = pwd.getpwnam(server_user)
        self.send_lock = threading.Lock()
        self.children: dict[int, float | None] = {}  # pid -> when it exited (None: running)
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    # transport -----------------------------------------------------------------------------
    def send(self, message: dict[str, Any]) -> None:
        with self.send_lock:
            self.sock.send(json.dumps(message).encode())

    def serve(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, MAX_MESSAGE, 3)
            except OSError:
                break
            if not data:
                break  # the server is gone
            try:
                request = json.loads(data)
                reply = self.handle(request, fds)
            except (Refused, OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            reply["id"] = request.get("id") if isinstance(request, dict) else None
            self.send(reply)
            if "pid" in reply and "error" not in reply:
                threading.Thread(target=self._reap, args=(reply["pid"],), daemon=True).start()
        self.shutdown()

    def handle(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        op = request["op"]
        if op == "ensure_user":
            return self.ensure_user(str(request["user"]))
        if op == "spawn":
            return self.spawn(request, fds)
        if op == "signal":
            return self.signal(int(request["pid"]), int(request["sig"]))
        if op == "own":
            return self.own(Path(request["path"]), str(request["user"]), str(request["kind"]))
        raise Refused(f"unknown operation {op!r}")

    # operations ----------------------------------------------------------------------------
    def app_user(self, name: str) -> pwd.struct_passwd:
        """An environment user: shiplane-named, in the apps group, never root or the server."""
        if not USER_NAME.match(name) or not name.startswith(USER_PREFIX):
            raise Refused(f"{name!r} is not an environment user's name")
        user = pwd.getpwnam(name)
        if user.pw_uid == 0 or user.pw_uid == self.server.pw_uid:
            raise Refused(f"{name!r} is privileged")
        if name not in grp.getgrnam(self.apps_group).gr_mem:
            raise Refused(f"{name!r} is not in the {self.apps_group} group")
        return user

    def ensure_user(self, name: str) -> dict[str, Any]:
        if not USER_NAME.match(name) or not name.startswith(USER_PREFIX):
            raise Refused(f"{name!r} is not an environment user's name")
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                 "/nonexistent", "--shell", "/usr/sbin/nologin", "--groups", self.apps_group,
                 name],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
        self.app_user(name)  # exists now, and is what an environment user must be
        return {"ok": True}

    def spawn(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        user = self.app_user(str(request["user"]))
        if len(fds) != 3:
            raise Refused("spawn needs stdin, stdout and stderr")
        argv = [str(part) for part in request["argv"]]
        env = {str(k): str(v) for k, v in dict(request["env"]).items()}
        env.update(HOME=str(request["cwd"]), USER=user.pw_name, LOGNAME=user.pw_name)
        process = subprocess.Popen(
            argv,
            cwd=str(request["cwd"]),
            env=env,
            stdin=fds[0],
            stdout=fds[1],
            stderr=fds[2],
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            umask=0o007,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.children[process.pid] = None
        self.processes[process.pid] = process
        return {"pid": process.pid}

    def _reap(self, pid: int) -> None:
        process = self.processes.pop(pid)
        code = process.wait()
        self.children[pid] = time.monotonic()
        self.send({"event": "exit", "pid": pid, "code": code})

    def signal(self, pid: int, sig: int) -> dict[str, Any]:
        self._forget_old()
        if pid not in self.children:
            raise Refused(f"pid {pid} is not a child of this broker")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        return {"ok": True}

    def _forget_old(self) -> None:
        now = time.monotonic()
        for pid, ended in list(self.children.items()):
            if ended is not None and now - ended > FORGET_AFTER:
                del self.children[pid]

    def own(self, path: Path, name: str, kind: str) -> dict[str, Any]:
        user = self.app_user(name)
        real = Path(os.path.realpath(path))
        try:
            parts = real.relative_to(self.root / "apps").parts
        except ValueError:
            raise Refused(f"{path} is not under {self.root / 'apps'}") from None
        # apps/<app>/<env>/releases/<release> or apps/<app>/<env>/shared: nothing else.
        expected = (len(parts) == 4 and parts[2] == "releases" and kind == "release") or (
            len(parts) == 3 and parts[2] == "shared" and kind == "shared"
        )
        if not expected or app_user_name(parts[0], parts[1]) != name:
            raise Refused(f"{path} is not {name}'s to own")
        if kind == "shared":
            self._share(real, user)
        else:
            self._hand_over_release(real, user)
        return {"ok": True}

    def _hand_over_release(self, real: Path, user: pwd.struct_passwd) -> None:
        """The environment's user owns (and builds in) its release; the server's group reads,
        also what the build and the app create later (setgid dirs give new files that group;
        the environment's umask 007 leaves them group-readable)."""
        gid = self.server.pw_gid
        for directory, dirnames, filenames in os.walk(real, followlinks=False):
            os.lchown(directory, user.pw_uid, gid)
            os.chmod(directory, 0o2750)
            for entry in (*dirnames, *filenames):
                full = os.path.join(directory, entry)
                os.lchown(full, user.pw_uid, gid)
                if entry in filenames and not os.path.islink(full):
                    owner = os.stat(full).st_mode & 0o700
                    os.chmod(full, owner | ((owner >> 3) & 0o050))

    def _share(self, real: Path, user: pwd.struct_passwd) -> None:
        """Both the environment's user (its app writes the database) and the server (backups,
        migrations, restores) read and write the shared dir, including files either creates
        later: SQLite's -wal and -shm files take the database file's mode, so a group alone
        would lock one of them out. Default ACLs name both users on every new file."""
        for directory, dirnames, filenames in os.walk(real, followlinks=False):
            for entry in (
                directory,
                *(os.path.join(directory, n) for n in (*dirnames, *filenames)),
            ):
                os.lchown(entry, user.pw_uid, user.pw_gid)
        os.chmod(real, 0o2770)
        both = f"u:{user.pw_name}:rwX,u:{self.server.pw_name}:rwX,m::rwX"
        subprocess.run(
            ["setfacl", "-R", "-P", "-m", f"{both},d:{both.replace(',', ',d:')}", str(real)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def shutdown(self) -> None:
        for pid, ended in self.children.items():
            if ended is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)


def main(argv: list[str]) -> int:
    fd, root, apps_group, server_user = argv
    die_with_parent()
    sock = socket.socket(fileno=int(fd))
    Broker(sock, Path(root), apps_group, server_user).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
