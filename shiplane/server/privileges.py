"""Enforced mode's start: root starts the server, which starts its broker and then becomes its
own unprivileged user before it opens a socket or reads a byte from a client."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shiplane import launch
from shiplane.launch.brokered import BrokerLauncher


class NotPermitted(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Enforcement:
    user: str  # the server's own OS user: owns the root, the state, the tokens
    clients_group: str  # members reach the control socket (agents, persons)
    apps_group: str  # every environment's user is a member (the broker checks)

    def describe(self) -> dict[str, str]:
        return {
            "mode": "enforced",
            "server_user": self.user,
            "clients_group": self.clients_group,
        }


def enter(enforcement: Enforcement, root: Path, socket_path: Path) -> None:
    """Start the broker, prepare what only root can, then drop to ``enforcement.user``."""
    if os.geteuid() != 0:
        raise NotPermitted(
            "an enforced server starts as root (the supervisor starts it) and drops to "
            f"{enforcement.user}; run `shiplane server install` as root"
        )
    user = pwd.getpwnam(enforcement.user)
    clients = grp.getgrnam(enforcement.clients_group)
    if user.pw_gid == clients.gr_gid or enforcement.user in clients.gr_mem:
        # The server's group reads releases and data: its clients must not share it.
        raise NotPermitted(
            f"the clients' group {enforcement.clients_group} must not be the server's own group"
        )
    _ensure_group(enforcement.apps_group)
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, user.pw_uid, user.pw_gid)
    # Environment users must reach their own release and shared dir below it: search, no list.
    root.chmod(0o711)
    # The socket's directory: the server creates the socket, its clients' group reaches it
    # (setgid: the socket takes the directory's group).
    socket_dir = socket_path.parent
    socket_dir.mkdir(parents=True, exist_ok=True)
    os.chown(socket_dir, user.pw_uid, clients.gr_gid)
    socket_dir.chmod(0o2750)
    broker = BrokerLauncher.start(root, enforcement.apps_group, enforcement.user)
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - setuid failed silently
        raise NotPermitted("could not drop root")
    os.environ.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    os.umask(0o077)
    launch.install(broker)


def _ensure_group(name: str) -> None:
    try:
        grp.getgrnam(name)
    except KeyError:
        subprocess.run(["groupadd", "--system", name], check=True, capture_output=True, timeout=30)
