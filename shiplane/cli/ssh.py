"""A shiplane server on another machine, reached over SSH by the same client.

One OpenSSH connection per host (a ControlMaster, kept ``PERSIST`` after the last command so
the next one starts at once) carries everything: the command that starts the remote server if
none runs and says where its control socket is (``shiplane server connect --json``), and a
forward of a local Unix socket to that remote socket (``-O forward -L local.sock:remote.sock``),
over which the control API, its operations and the git bundles go exactly as they do locally.

Why the system's OpenSSH client rather than asyncssh: it honours what users of Kamal or
Capistrano expect of a deploy tool, for free and unchanged: ~/.ssh/config (Host aliases,
ProxyJump, IdentityFile), the agent, known_hosts and its prompts' policy, certificates and
hardware keys; its ControlMaster multiplexes and forwards a Unix socket, so the client stays
the same synchronous httpx code; and it adds no dependency and no event loop to the CLI.

Settings (environment): ``SHIPLANE_SSH_OPTIONS`` extra ssh arguments (e.g. ``-F file``);
``SHIPLANE_REMOTE_COMMAND`` how to run shiplane on the remote (default ``shiplane``);
``SHIPLANE_RUNTIME_DIR`` where the connection's sockets live (default
``$XDG_RUNTIME_DIR/shiplane`` or ``/tmp/shiplane-<uid>``, mode 0700).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from shiplane.cli.connection import Connection
from shiplane.config.hosts import SshHost
from shiplane.errors import ConfigError, ServerUnavailable
from shiplane.layout import ServerLayout
from shiplane.targets.control_client import ServerClient

CONNECT_TIMEOUT = 10  # seconds ssh waits for the TCP connection
COMMAND_TIMEOUT = 60  # the remote command (it may start a server)
PERSIST = "60s"
# Unix socket paths are limited to ~108 bytes (sun_path); leave room for the name.
MAX_SOCKET_PATH = 100


def runtime_dir() -> Path:
    configured = os.environ.get("SHIPLANE_RUNTIME_DIR")
    if configured:
        directory = Path(configured)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        directory = Path(os.environ["XDG_RUNTIME_DIR"]) / "shiplane"
    else:
        directory = Path(tempfile.gettempdir()) / f"shiplane-{os.getuid()}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    # Sockets here reach a server with its token: nobody else may own or enter the directory.
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"{directory} must belong to you with mode 0700 (it holds the SSH sockets)",
            next_action=f"chmod 700 {directory}, or set SHIPLANE_RUNTIME_DIR to another one",
        )
    return directory


def ssh_options() -> list[str]:
    return shlex.split(os.environ.get("SHIPLANE_SSH_OPTIONS", ""))


def remote_command() -> list[str]:
    return shlex.split(os.environ.get("SHIPLANE_REMOTE_COMMAND", "") or "shiplane")


class Ssh(Connection):
    def __init__(self, host: SshHost) -> None:
        self.host = host
        self.label = str(host)
        runtime = runtime_dir()
        key = hashlib.sha256(f"{host}\0{ssh_options()}".encode()).hexdigest()[:16]
        self.ctl = runtime / f"{key}.ctl"
        self.local = runtime / f"{key}.sock"
        self.info = runtime / f"{key}.json"
        if len(str(self.local)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"{runtime} is too long a path for the SSH sockets",
                next_action="set SHIPLANE_RUNTIME_DIR to a short directory, e.g. /tmp/sl",
            )
        saved = self._saved()
        super().__init__(
            ServerClient(ServerLayout(runtime), socket=self.local, token=saved.get("token", ""))
        )

    # connection ------------------------------------------------------------------------
    def open(self) -> None:
        """Reuse the live connection (one ``ssh -O check``), or make one."""
        if self._saved() and self.local.exists() and self._master_alive():
            return
        self._connect()

    def ensure_server(self) -> None:
        """The remote server did not answer: start it (the connect command does) and forward
        again, over the same connection when it still lives."""
        self._connect()

    def _connect(self) -> None:
        if not self._master_alive():
            self.ctl.unlink(missing_ok=True)
            self._start_master()
        answer = self._remote_json([*remote_command(), "server", "connect", "--json"])
        socket, token_file = answer.get("socket"), answer.get("token_file")
        if not isinstance(socket, str) or not isinstance(token_file, str):
            raise ServerUnavailable(
                f"the shiplane server on {self.label} did not say where it listens: {answer}",
                next_action=f"run `ssh {self.host.destination} shiplane server connect --json`",
            )
        token = self._remote(["cat", "--", token_file]).strip()
        saved = self._saved()
        if saved.get("socket") != socket or not self.local.exists():
            if saved.get("socket"):
                self._control("cancel", saved["socket"], check=False)
            self.local.unlink(missing_ok=True)
            self._control("forward", socket)
        fd = os.open(self.info, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"socket": socket, "token": token}, handle)
        self.client.token = token

    def _saved(self) -> dict[str, str]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.info.read_text())
            if isinstance(data, dict):
                return {str(k): str(v) for k, v in data.items()}
        return {}

    def _base(self) -> list[str]:
        port = ["-p", str(self.host.port)] if self.host.port else []
        return [
            "ssh",
            *ssh_options(),
            "-o",
            "BatchMode=yes",  # never a prompt: an agent runs this as often as a person
            "-o",
            f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-S",
            str(self.ctl),
            *port,
        ]

    def _master_alive(self) -> bool:
        if not self.ctl.exists():
            return False
        proc = self._run([*self._base(), "-O", "check", self.host.destination], timeout=15)
        return proc.returncode == 0

    def _start_master(self) -> None:
        # ssh -f stays in the background holding what it was given: its stderr goes to a
        # file, not a pipe, or reading the pipe would wait for the master to end.
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.run(
                    [
                        *self._base(),
                        "-M",
                        "-f",
                        "-N",
                        "-o",
                        f"ControlPersist={PERSIST}",
                        "-o",
                        "ServerAliveInterval=15",
                        "-o",
                        "ExitOnForwardFailure=yes",
                        "-o",
                        "StreamLocalBindUnlink=yes",
                        self.host.destination,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    timeout=CONNECT_TIMEOUT + 30,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise self._unreachable("no answer in time") from None
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
        if proc.returncode != 0:
            raise self._unreachable(stderr)

    def _control(self, action: str, remote_socket: str, *, check: bool = True) -> None:
        spec = f"{self.local}:{remote_socket}"
        proc = self._run([*self._base(), "-O", action, "-L", spec, self.host.destination])
        if check and proc.returncode != 0:
            raise ServerUnavailable(
                f"could not forward the shiplane server's socket from {self.label}: "
                f"{_last_line(proc.stderr)}",
                next_action="the remote sshd must allow it: AllowStreamLocalForwarding yes",
            )

    def _remote(self, argv: list[str]) -> str:
        command = " ".join(shlex.quote(part) for part in argv)  # ssh hands it to a shell
        proc = self._run([*self._base(), self.host.destination, command], COMMAND_TIMEOUT)
        if proc.returncode == 255:
            raise self._unreachable(proc.stderr)
        if proc.returncode != 0:
            raise ServerUnavailable(
                f"`{command}` failed on {self.label} (exit {proc.returncode}): "
                f"{_last_line(proc.stderr or proc.stdout)}",
                next_action=f"install shiplane on {self.host.host}, or set "
                "SHIPLANE_REMOTE_COMMAND to how it runs there",
            )
        return proc.stdout

    def _remote_json(self, argv: list[str]) -> dict[str, object]:
        output = self._remote(argv)
        try:
            data = json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            data = None
        if not isinstance(data, dict):
            raise ServerUnavailable(
                f"the shiplane server on {self.label} answered no JSON: {output[-200:]!r}",
                next_action=f"run `ssh {self.host.destination} shiplane server connect --json`",
            )
        if not data.get("ok", True):
            error = data.get("error") or {}
            raise ServerUnavailable(
                f"the shiplane server on {self.label} did not start: {error}",
                next_action=f"read the server's log on {self.host.host}",
            )
        return data

    def _run(self, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise self._unreachable("no answer in time") from None
        except OSError as exc:
            raise ServerUnavailable(
                f"cannot run ssh: {exc}",
                next_action="install the OpenSSH client (openssh-client)",
            ) from exc

    def _unreachable(self, stderr: str) -> ServerUnavailable:
        detail = _last_line(stderr)
        if "Permission denied" in stderr or "Host key verification failed" in stderr:
            advice = (
                f"check that `ssh {self.host.destination} true` works without a prompt: your "
                "key loaded (ssh-add -l) and authorized there, the host in known_hosts"
            )
        else:
            advice = (
                f"check that {self.host.host} is up and reachable: "
                f"`ssh {self.host.destination} true`"
            )
        return ServerUnavailable(
            f"cannot reach the shiplane server on {self.label} over SSH: {detail}",
            next_action=advice,
        )


def disconnect_all(runtime: Path) -> None:
    """End every SSH connection whose control socket is in ``runtime`` (tests, `--host` users
    who do not want to wait for ControlPersist)."""
    for ctl in runtime.glob("*.ctl"):
        subprocess.run(
            ["ssh", "-S", str(ctl), "-O", "exit", "shiplane"],
            capture_output=True,
            timeout=15,
            check=False,
        )


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no detail"
