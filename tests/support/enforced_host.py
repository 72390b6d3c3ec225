"""An enforced-mode host in a temporary directory: real OS users, `shiplane server install`, a
real supervisord running the server as root (the server drops to its own user), and the CLI
run as other OS users through `setpriv`.

Other users cannot run the project's .venv (it lives under /root, 0700), so the host gets the
install a real one would have: a venv built from Debian's python3 in a world-readable directory,
with shiplane installed from a copy of the sources (not editable, nothing written to the
worktree).
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.app_repo import GIT_ENV, ROOT, Run, make_repo

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_START_TIMEOUT = 60.0


def run_root(
    *argv: str, timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=check)


@contextlib.contextmanager
def shared_venv() -> Iterator[Path]:
    """A venv every user may run (0755 all the way), with shiplane and the example app's
    dependencies; removed afterwards. Its python is what the yield gives."""
    base = Path(tempfile.mkdtemp(prefix="shiplane-venv-"))
    try:
        base.chmod(0o755)
        source = base / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(ROOT / name, source / name)
        shutil.copytree(
            ROOT / "shiplane", source / "shiplane", ignore=shutil.ignore_patterns("__pycache__")
        )
        venv = base / "venv"
        run_root(SYSTEM_PYTHON, "-m", "venv", str(venv), timeout=300)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        # Non-editable: the users' python must not reach back into the worktree.
        run_root(*pip, f"{source}[examples]", timeout=900)
        shutil.rmtree(source)
        yield venv / "bin" / "python"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def add_user(name: str, home: Path) -> None:
    """A login user with its own group and home (git and `tokens use` write there)."""
    run_root(
        "useradd", "--user-group", "--create-home", "--home-dir", str(home), "--shell",
        "/bin/sh", name,
    )  # fmt: skip


def uid_of(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def kill_processes_of(uids: set[int]) -> None:
    """Whatever still runs as a user this test made (by pid, found in /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid in uids:
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def remove_users(users: list[str], groups: list[str]) -> None:
    uids = {uid for uid in map(uid_of, users) if uid is not None}
    for _ in range(3):  # processes may still be exiting
        kill_processes_of(uids)
        time.sleep(0.2)
    for user in users:
        if uid_of(user) is not None:
            run_root("userdel", "--remove", user, check=False)
    for group in groups:
        with contextlib.suppress(KeyError):
            grp.getgrnam(group)
            run_root("groupdel", group, check=False)


@dataclass
class EnforcedHost:
    """The paths of one enforced install, and the CLI as any of its users."""

    base: Path
    python: Path
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    supervisord: subprocess.Popen[bytes] | None = None

    @property
    def server_user(self) -> str:
        return f"sl{self.suffix}"

    @property
    def group(self) -> str:
        """The clients' group (the server's own group is its user's name)."""
        return f"sc{self.suffix}"

    @property
    def apps_group(self) -> str:
        return f"sa{self.suffix}"

    @property
    def agent(self) -> str:
        return f"ag{self.suffix}"

    @property
    def person(self) -> str:
        return f"pe{self.suffix}"

    @property
    def app(self) -> str:
        return f"n{self.suffix}"

    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def home(self) -> Path:
        return self.base / "srv" / "home"

    @property
    def socket(self) -> Path:
        return self.base / "run" / "server.sock"

    @property
    def supervisor(self) -> Path:
        return self.base / "supervisor"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    def user_home(self, user: str) -> Path:
        return self.base / "users" / user

    def env_for(self, user: str) -> dict[str, str]:
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.user_home(user)) if user != "root" else "/root",
            "USER": user,
            "LOGNAME": user,
            "LANG": "C.UTF-8",
            "SHIPLANE_ETC": str(self.etc),
            **GIT_ENV,
        }

    def as_user(
        self,
        user: str,
        *argv: str,
        cwd: Path | None = None,
        extra_env: dict[str, str] | None = None,
        timeout: float = 240,
    ) -> subprocess.CompletedProcess[str]:
        """``argv`` as ``user`` (its groups included), with a clean environment."""
        prefix = [] if user == "root" else [
            "setpriv", f"--reuid={user}", f"--regid={pwd.getpwnam(user).pw_gid}",
            "--init-groups", "--",
        ]  # fmt: skip
        return subprocess.run(
            [*prefix, *argv],
            cwd=cwd or self.base,
            env={**self.env_for(user), **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def shiplane(
        self,
        user: str,
        *args: str,
        cwd: Path | None = None,
        extra_env: dict[str, str] | None = None,
        timeout: float = 240,
    ) -> Run:
        proc = self.as_user(
            user, str(self.python), "-m", "shiplane", *args, cwd=cwd, extra_env=extra_env,
            timeout=timeout,
        )  # fmt: skip
        lines = proc.stdout.strip().splitlines()
        try:
            data: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        except ValueError:
            data = {}
        return Run(proc.returncode, data, proc.stdout, proc.stderr)

    def python_as(self, user: str, code: str) -> subprocess.CompletedProcess[str]:
        return self.as_user(user, str(self.python), "-c", code, timeout=60)

    def app_repo(self, owner: str, clone: Path | None = None) -> Path:
        """The example app (named ``app``) in a repository ``owner`` owns, readable by the
        server's user (it reads shiplane.toml from the client's working tree); a clone of
        ``clone`` (same history, same ports) when given."""
        work = self.base / "work" / owner
        work.mkdir(parents=True)
        if clone is None:
            made = make_repo(work, name=self.app, home=self.home)
            repo = made.path
        else:
            repo = work / self.app
            # The source belongs to another user: git trusts it only through a global config
            # (protected configuration), so this clone gets one of its own.
            trust = self.base / "trust.gitconfig"
            trust.write_text("[safe]\n\tdirectory = *\n")
            subprocess.run(
                ["git", "clone", "-q", str(clone), str(repo)],
                env={**os.environ, "GIT_CONFIG_GLOBAL": str(trust)},
                capture_output=True,
                timeout=60,
                check=True,
            )
            run_root("git", "-C", str(repo), "branch", "-q", "dev", "origin/dev")
        shutil.chown(work, owner, owner)
        run_root("chown", "-R", f"{owner}:{owner}", str(repo))
        return repo

    def install(self, *extra: str) -> Run:
        return self.shiplane(
            "root", "server", "install", "--user", self.server_user, "--group", self.group,
            "--apps-group", self.apps_group, "--home", str(self.home), "--socket",
            str(self.socket), "--etc", str(self.etc), "--supervisor-dir",
            str(self.supervisor / "conf.d"), "--systemd-dir", str(self.base / "systemd"),
            "--log-dir", str(self.log_dir), "--python",
            str(self.python), *extra,
        )  # fmt: skip

    def supervisord_conf(self) -> Path:
        conf = self.supervisor / "supervisord.conf"
        conf.write_text(
            f"""[unix_http_server]
file={self.supervisor}/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
user=root
logfile={self.supervisor}/supervisord.log
pidfile={self.supervisor}/supervisord.pid
childlogdir={self.supervisor}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{self.supervisor}/supervisor.sock

[include]
files = {self.supervisor}/conf.d/*.conf
"""
        )
        return conf

    def start_supervisord(self) -> None:
        conf = self.supervisord_conf()
        with open(self.supervisor / "supervisord.out", "ab") as out:
            self.supervisord = subprocess.Popen(
                ["supervisord", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def supervisorctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        conf = self.supervisor / "supervisord.conf"
        return run_root("supervisorctl", "-c", str(conf), *args, check=False)

    def wait_for_server(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists() and self.server_pid() is not None:
                return
            if self.supervisord is not None and self.supervisord.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"the enforced server did not start:\n{self.diagnostics()}")

    def server_pid(self) -> int | None:
        try:
            return int((self.home / "server.pid").read_text())
        except (OSError, ValueError):
            return None

    def diagnostics(self) -> str:
        parts = []
        for path in (
            self.log_dir / "server.log",
            self.supervisor / "supervisord.log",
            self.supervisor / "supervisord.out",
        ):
            with contextlib.suppress(OSError):
                parts.append(f"--- {path}\n{path.read_text()[-4000:]}")
        return "\n".join(parts)

    def stop_supervisord(self) -> None:
        proc = self.supervisord
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # stops the server (TERM, up to stopwaitsecs)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self.supervisord = None

    def users(self) -> list[str]:
        """Every user this host made: ours, and the per-app users the broker added."""
        made = [self.agent, self.person, self.server_user]
        with contextlib.suppress(KeyError):
            made += list(grp.getgrnam(self.apps_group).gr_mem)
        return made


@contextlib.contextmanager
def enforced_host(python: Path) -> Iterator[EnforcedHost]:
    """Users, install, supervisord and the server; everything undone afterwards, also when
    a step fails half-way."""
    base = Path(tempfile.mkdtemp(prefix="shiplane-enforced-"))
    base.chmod(0o755)
    host = EnforcedHost(base, python)
    for directory in (base / "users", base / "work", host.supervisor / "conf.d"):
        directory.mkdir(parents=True)
        directory.chmod(0o755)
    users: list[str] = []
    try:
        for user in (host.agent, host.person):
            add_user(user, host.user_home(user))
        installed = host.install("--client", host.agent, "--client", host.person)
        assert installed.code == 0, installed.stdout + installed.stderr
        host.start_supervisord()
        host.wait_for_server()
        yield host
    finally:
        users = host.users()
        host.stop_supervisord()
        remove_users(
            users, [host.group, host.apps_group, host.server_user, host.agent, host.person]
        )
        shutil.rmtree(base, ignore_errors=True)
