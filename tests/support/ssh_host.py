"""Another machine for the client to reach over SSH: a network namespace joined by a veth pair
(a /30 inside 10.231.77.0/24, one per test so xdist workers do not meet), a real sshd in it
(key-only, a host key and a client key made here, known_hosts here: ~/.ssh is never read), and
its own SHIPLANE_HOME (sshd's SetEnv), distinct from the client's. Everything it starts (sshd,
the remote shiplane server, the client's SSH connections) is stopped on the way out, and the
namespace and the link are deleted."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shiplane.cli.ssh import disconnect_all
from tests.support.app_repo import SHIPLANE


@dataclass
class SshHost:
    ns: str
    address: str
    remote_home: Path
    # What a client needs to reach it (merged into the client's environment).
    client_env: dict[str, str] = field(default_factory=dict)

    @property
    def destination(self) -> str:
        return f"root@{self.address}"

    def run_inside(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A command on the other machine (for the test's own checks, not the client's)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def ssh_host(tmp_path: Path, server_env: dict[str, str] | None = None) -> Iterator[SshHost]:
    suffix = secrets.token_hex(2)
    ns, here, there = f"slssh{suffix}", f"sla{suffix}", f"slb{suffix}"
    block = int(suffix, 16) % 63 * 4  # a /30 inside 10.231.77.0/24
    ours, theirs = f"10.231.77.{block + 1}", f"10.231.77.{block + 2}"
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    remote_home = tmp_path / "remote-home"
    # Unix socket paths are short (sun_path): the client's SSH sockets live in a short dir.
    runtime = Path(tempfile.mkdtemp(prefix="slr-", dir="/tmp"))
    sshd: subprocess.Popen[bytes] | None = None
    try:
        _run("ip", "netns", "add", ns)
        _run("ip", "link", "add", here, "type", "veth", "peer", "name", there)
        _run("ip", "link", "set", there, "netns", ns)
        _run("ip", "addr", "add", f"{ours}/30", "dev", here)
        _run("ip", "link", "set", here, "up")
        _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{theirs}/30", "dev", there)
        _run("ip", "netns", "exec", ns, "ip", "link", "set", there, "up")
        _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        for name in ("host_key", "client_key"):
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name))
        (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
        host_key = (keys / "host_key.pub").read_text().split()
        (keys / "known_hosts").write_text(f"{theirs} {host_key[0]} {host_key[1]}\n")
        settings = {"SHIPLANE_HOME": str(remote_home), **(server_env or {})}
        (keys / "sshd_config").write_text(
            f"Port 22\nListenAddress {theirs}\nHostKey {keys / 'host_key'}\n"
            f"PidFile {keys / 'sshd.pid'}\nAuthorizedKeysFile {keys / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\n"
            "UsePAM no\nAllowStreamLocalForwarding yes\n"
            f"SetEnv {' '.join(f'{k}={v}' for k, v in settings.items())}\n"
        )
        (keys / "ssh_config").write_text(
            f"Host *\n  IdentityFile {keys / 'client_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {keys / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  LogLevel ERROR\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        with (keys / "sshd.log").open("wb") as log:
            sshd = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "/usr/sbin/sshd",
                    "-D",
                    "-e",
                    "-f",
                    str(keys / "sshd_config"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        host = SshHost(
            ns=ns,
            address=theirs,
            remote_home=remote_home,
            client_env={
                "SHIPLANE_SSH_OPTIONS": f"-F {keys / 'ssh_config'}",
                "SHIPLANE_REMOTE_COMMAND": f"{sys.executable} -m shiplane",
                "SHIPLANE_RUNTIME_DIR": str(runtime),
            },
        )
        _wait_listening(host)
        yield host
    finally:
        disconnect_all(runtime)
        subprocess.run(
            [*SHIPLANE, "server", "stop", "--root", str(remote_home)],
            env={**os.environ, "SHIPLANE_HOME": str(remote_home)},
            capture_output=True,
            timeout=60,
            check=False,
        )
        if sshd is not None:
            sshd.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                sshd.wait(timeout=10)
            if sshd.poll() is None:
                sshd.kill()
                sshd.wait(timeout=10)
        _kill_namespace_processes(ns)
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        shutil.rmtree(runtime, ignore_errors=True)


def _wait_listening(host: SshHost, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = host.run_inside("ss", "-ltn", "sport = :22", timeout=10)
        if f"{host.address}:22" in probe.stdout:
            return
        time.sleep(0.1)
    raise RuntimeError("sshd did not start listening")


def _kill_namespace_processes(ns: str) -> None:
    """Whatever still runs in the namespace (a server's instance) dies with it."""
    for _ in range(50):
        listed = subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30, check=False
        )
        pids = [int(p) for p in listed.stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
