"""`shiplane server install`: put this host in enforced mode (as root, idempotent).

What it sets up, and why each piece:

- the server's OS user (``useradd --system``, its own group, no login shell), the clients'
  group (agents and persons; never the server's own group, which may read releases and data,
  and the server is not a member) and the apps' group for the per-app users that run app code;
- the server's home, owned by that user, 0700: state.db, host.db (tokens), backups, env files
  and the server's repositories are nobody else's to read;
- the socket's directory, ``user:group`` 2750 (setgid: the socket takes the clients' group):
  clients of the group reach the socket (the server creates it 0660), nobody else sees it;
- the marker ``/etc/shiplane/enforced`` (0644, see ``shiplane.hostconfig``);
- a systemd unit (checked with ``systemd-analyze verify`` where that tool exists) and a
  supervisor program, each running ``shiplane server --foreground --enforced`` as root and
  restarting it when it dies (``shiplane.hostunits``). Clients never start this server.

Each step checks what is there first and only changes what differs, so running it again is
safe and reports ``unchanged``.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiplane.errors import ConfigError, RefusedError, ShiplaneError
from shiplane.hostconfig import DEFAULT_ETC, HostConfig, marker_path
from shiplane.hostunits import PROGRAM, UNIT, supervisor_program, systemd_unit, verify_unit

COMMAND_TIMEOUT = 60
NOLOGIN = next(
    (p for p in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if Path(p).exists()),
    "/bin/false",
)
SBIN = ("/usr/sbin", "/sbin")


@dataclass(frozen=True)
class InstallOptions:
    host: HostConfig
    etc: Path = DEFAULT_ETC
    supervisor_dir: Path = Path("/etc/supervisor/conf.d")
    systemd_dir: Path = Path("/etc/systemd/system")
    log_dir: Path = Path("/var/log/shiplane")
    python: Path = Path("/usr/bin/python3")
    clients: tuple[str, ...] = ()


@dataclass
class Report:
    """What install did: each thing it created or changed, and what was already right."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def note(self, what: str, changed: bool) -> None:
        (self.changed if changed else self.unchanged).append(what)


def install(options: InstallOptions) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise RefusedError(
            "`shiplane server install` creates OS users and writes /etc: it must run as root",
            step="install",
            next_action="sudo shiplane server install --user shiplane",
        )
    host = options.host
    check_groups(host)
    report = Report()
    report.note(f"group {host.group}", _ensure_group(host.group))
    report.note(f"group {host.apps_group}", _ensure_group(host.apps_group))
    report.note(f"user {host.user}", _ensure_user(host))
    _check_server_not_a_client(host)
    for client in options.clients:
        report.note(f"user {client} in group {host.group}", _ensure_member(client, host.group))
    user = pwd.getpwnam(host.user)
    clients_gid = grp.getgrnam(host.group).gr_gid
    report.note(f"home {host.home}", _ensure_dir(host.home, user.pw_uid, user.pw_gid, 0o700, 0o011))
    report.note(
        f"socket directory {host.socket.parent}", ensure_socket_dir(host, user.pw_uid, clients_gid)
    )
    report.note(f"log directory {options.log_dir}", _ensure_dir(options.log_dir, 0, 0, 0o750))
    etc_dir = marker_path(options.etc).parent
    report.note(f"directory {etc_dir}", _ensure_dir(etc_dir, 0, 0, 0o755))
    marker = marker_path(options.etc)
    report.note(f"marker {marker}", _write(marker, host.to_toml(), 0o644))
    program = options.supervisor_dir / f"{PROGRAM}.conf"
    report.note(
        f"supervisor program {program}", _write(program, supervisor_program(options), 0o644)
    )
    unit = options.systemd_dir / UNIT
    report.note(f"systemd unit {unit}", _write(unit, systemd_unit(options), 0o644))
    return {
        "changed": report.changed,
        "unchanged": report.unchanged,
        "marker": str(marker),
        "supervisor_program": str(program),
        "systemd_unit": str(unit),
        "systemd_check": verify_unit(unit),
        "home": str(host.home),
        "socket": str(host.socket),
        "user": host.user,
        "group": host.group,
        "apps_group": host.apps_group,
        "next_steps": [
            "systemctl daemon-reload && systemctl enable --now shiplane   # with systemd, or",
            "supervisorctl reread && supervisorctl update   # without it: starts the server",
            f"usermod -aG {host.group} NAME   # each agent or person that may use shiplane",
            "shiplane tokens create --role person --label NAME   # as root, in an app's repo: "
            "the host's first token (the server token is root's to read)",
        ],
    }


def ensure_socket_dir(host: HostConfig, uid: int, gid: int) -> bool:
    """The socket's directory, ``user:group`` 2750 (what the server, still root, makes of it
    again at every start: /run is emptied at boot)."""
    return _ensure_dir(host.socket.parent, uid, gid, 0o2750)


def check_groups(host: HostConfig) -> None:
    """The clients' group is not the server's own (that one may read releases and data) nor
    the apps' group (that one runs app code)."""
    if host.group in (host.user, host.apps_group) or host.user == host.apps_group:
        raise ConfigError(
            f"the clients' group ({host.group}), the server's user ({host.user}, whose own group "
            f"shares its name) and the apps' group ({host.apps_group}) must be three names",
            step="usage",
            next_action="e.g. --user shiplane --group shiplane-clients --apps-group shiplane-apps",
        )


def _check_server_not_a_client(host: HostConfig) -> None:
    user = pwd.getpwnam(host.user)
    clients = grp.getgrnam(host.group)
    if user.pw_gid == clients.gr_gid or host.user in clients.gr_mem:
        raise ConfigError(
            f"the server's user {host.user} is in the clients' group {host.group}: the server "
            "refuses to start that way",
            step="install",
            next_action=f"gpasswd -d {host.user} {host.group}, or choose another --group",
        )


def _run(*args: str) -> None:
    # useradd and friends live in sbin, which a plain user's PATH (or `su`'s) may lack.
    tool = shutil.which(args[0], path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if tool is None:
        raise ConfigError(
            f"{args[0]} is not installed", step="install", next_action="apt-get install passwd"
        )
    try:
        subprocess.run(
            [tool, *args[1:]], check=True, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
    except subprocess.CalledProcessError as exc:
        raise ShiplaneError(
            f"{' '.join(args)} failed: {exc.stderr.strip() or exc.returncode}",
            step="install",
            next_action="fix the user or group named in the message, then run install again",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ShiplaneError(f"{args[0]} did not finish", step="install") from exc


def _ensure_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return False
    except KeyError:
        _run("groupadd", "--system", name)
        return True


def _ensure_user(host: HostConfig) -> bool:
    try:
        pwd.getpwnam(host.user)
        return False
    except KeyError:
        pass
    _run(
        "useradd",
        "--system",
        "--user-group",
        "--home-dir",
        str(host.home),
        "--no-create-home",
        "--shell",
        NOLOGIN,
        "--comment",
        "shiplane server",
        host.user,
    )
    return True


def _ensure_member(user: str, group: str) -> bool:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(
            f"no OS user {user!r} to add to group {group}",
            step="install",
            next_action=f"create the user first (useradd {user}), then run install again",
        ) from None
    record = grp.getgrnam(group)
    if user in record.gr_mem or entry.pw_gid == record.gr_gid:
        return False
    _run("usermod", "--append", "--groups", group, user)
    return True


def _ensure_dir(path: Path, uid: int, gid: int, mode: int, tolerated: int = 0) -> bool:
    """``path`` owned by ``uid:gid`` with ``mode``; ``tolerated`` bits may stay set (the
    server opens its home to traversal, 0711, so per-app users reach their releases)."""
    changed = False
    if not path.is_dir():
        path.mkdir(parents=True, mode=mode)
        changed = True
    info = path.stat()
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.chown(path, uid, gid)
        changed = True
    if info.st_mode & 0o7777 & ~tolerated != mode:
        path.chmod(mode)
        changed = True
    return changed


def _write(path: Path, text: str, mode: int) -> bool:
    """Write ``path`` (root-owned, ``mode``) atomically when its content differs."""
    try:
        info = path.stat()
        if path.read_text() == text and info.st_mode & 0o7777 == mode and info.st_uid == 0:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.chown(tmp, 0, 0)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
