"""The CLI's side of the control API; starts the server in the background when it is not up."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from shiplane.credentials import client_token
from shiplane.errors import (
    OperationInterrupted,
    ServerError,
    ServerNotAnswering,
    ServerUnavailable,
)
from shiplane.hostconfig import load_host_config
from shiplane.layout import ServerLayout
from shiplane.procenv import child_environment
from shiplane.state.procs import process_alive, process_stopped
from shiplane.targets import in_process

START_TIMEOUT = 20.0
OPERATION_SILENCE = 30.0


class ServerClient:
    """The control API of the server at ``layout``; a client reaching a remote server passes
    the local end of the forwarded ``socket`` and the remote server's ``token``
    (``shiplane.cli.connection``)."""

    def __init__(
        self,
        layout: ServerLayout,
        timeout: float = 120.0,
        *,
        socket: Path | None = None,
        token: str | None = None,
    ) -> None:
        self.layout = layout
        self.timeout = timeout
        self.socket = socket or layout.socket
        self.token = token

    def _client(self) -> httpx.Client:
        token = self.token
        if token is None:
            token = self._server_token() or client_token() or ""
        # In the server itself: its own core, no socket (shiplane.targets.in_process). Else
        # no TLS on a Unix socket: verify=False skips loading the CA bundle (~25 ms a client).
        transport = in_process.transport_for(self.socket) if self.token is None else None
        return httpx.Client(
            transport=transport or httpx.HTTPTransport(uds=str(self.socket), verify=False),
            base_url="http://shiplane",
            headers={"x-shiplane-token": token},
            timeout=self.timeout,
        )

    def _server_token(self) -> str | None:
        """The server's own token, when this user may read it (the server's owner, root).
        A client of an enforced server may not: it presents its issued token instead."""
        try:
            return self.layout.token.read_text().strip()
        except OSError:
            return None

    def _socket_exists(self) -> bool:
        # os.path.exists, not Path.exists: a socket directory this user may not enter is
        # "no server for you" here, not an exception (Path.exists raises on EACCES in 3.11).
        return os.path.exists(self.socket)

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        try:
            with self._client() as client:
                response = client.request(method, path, json=body, timeout=timeout or self.timeout)
        except httpx.HTTPError as exc:
            raise ServerError(
                f"shiplane server unreachable at {self.socket}: {exc}",
                next_action="run `shiplane server` to start it, then retry",
            ) from exc
        data = response.json()
        if response.status_code >= 400:
            raise ServerError(f"shiplane server: {data.get('error', response.text)}")
        return data

    def exchange(
        self,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        content: bytes | None = None,
        timeout: float = 300.0,
    ) -> httpx.Response:
        """POST ``body`` (JSON) or ``content`` (bytes) and return the response as it is; a
        server that does not answer is ServerUnavailable (nothing was done)."""
        self.refuse_if_stopped()
        if not self.socket.exists():
            raise ServerUnavailable(
                f"no shiplane server answers at {self.socket}",
                next_action="run `shiplane server` to start it, then retry",
            )
        try:
            with self._client() as client:
                return client.post(path, json=body, content=content, timeout=timeout)
        except httpx.ConnectError as exc:
            raise ServerUnavailable(
                f"no shiplane server answers at {self.socket}",
                next_action="run `shiplane server` to start it, then retry",
            ) from exc
        except httpx.HTTPError as exc:
            raise ServerError(
                f"the shiplane server stopped answering ({type(exc).__name__})",
                next_action="retry; `shiplane status` shows whether the server runs",
            ) from exc

    def operation(self, name: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Run operation ``name`` in the server: its events as they come, the result last.
        A stream that ends without a result means the server went away mid-operation."""
        # The server sends a heartbeat every few seconds: silence this long means it stalled.
        timeout = httpx.Timeout(connect=10, read=OPERATION_SILENCE, write=30, pool=10)
        self.refuse_if_stopped()
        if not self._socket_exists():
            # Checked before the token is read: a server writes its token before its socket,
            # so a socket seen here means the token read next is the one it checks.
            raise ServerUnavailable(
                f"no shiplane server answers at {self.socket}", next_action=_start_hint()
            )
        answered = False
        try:
            with (
                self._client() as client,
                client.stream("POST", f"/ops/{name}", json=body, timeout=timeout) as response,
            ):
                answered = True
                if response.status_code >= 400:
                    response.read()
                    raise ServerError(f"shiplane server: {response.text}")
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.ConnectError as exc:
            # Nothing was sent: no server listens (or a stale socket file is left), or this
            # user may not connect to it.
            if isinstance(exc.__cause__, PermissionError) or "Permission denied" in str(exc):
                raise ServerUnavailable(
                    f"permission denied on the shiplane server's socket {self.socket}",
                    next_action=_group_hint(),
                ) from exc
            raise ServerUnavailable(
                f"no shiplane server answers at {self.socket}", next_action=_start_hint()
            ) from exc
        except httpx.HTTPError as exc:
            if not answered:
                # Stopped while we waited for its first byte: the operation never began there.
                self.refuse_if_stopped()
            raise OperationInterrupted(
                f"the shiplane server stopped answering during {name}: {type(exc).__name__}",
                next_action="run `shiplane status`: it restarts the server and recovers what "
                "the operation left",
            ) from exc

    def ping(self) -> dict[str, Any] | None:
        if not self._socket_exists():
            return None
        try:
            with self._client() as client:
                response = client.get("/ping", timeout=3)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def ensure_running(self) -> dict[str, Any]:
        """A server that answers; started here when none lives. Never a second one beside a
        server that lives but does not answer (ServerNotAnswering, exit 7)."""
        self.refuse_if_stopped()
        info = self.ping()
        if info is not None:
            return info
        refuse_private_server()
        self.layout.ensure()
        lock_path = self.layout.start_lock
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            info = self.ping()
            if info is not None:
                return info
            self._refuse_if_a_server_lives()
            try:  # a server could not write here either: say why now, not after a timeout
                os.write(lock.fileno(), f"{os.getpid()}\n".encode())
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(lock_path)) from exc
            server = self._spawn()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                info = self.ping()
                if info is not None:
                    return info
                if server.poll() is not None:
                    raise ServerUnavailable(
                        f"the shiplane server exited as it started (code {server.returncode})",
                        next_action=f"read {self.layout.log}",
                    )
                time.sleep(0.05)
        raise ServerUnavailable(
            f"shiplane server did not start within {START_TIMEOUT:.0f}s",
            next_action=f"read {self.layout.log}",
        )

    def _refuse_if_a_server_lives(self) -> None:
        """A server that holds its life lock but does not answer is stopped or overloaded, not
        gone: starting a second one would fight it for the socket and the ports."""
        if not self.layout.life_lock.exists():
            return
        fd = os.open(self.layout.life_lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise not_answering(self._pid(), self.layout.root, stopped=False) from None
        finally:
            os.close(fd)  # closing drops the lock we may have taken

    def refuse_if_stopped(self) -> None:
        """This machine's server stopped by a signal answers nothing: say so at once (exit 7)
        rather than after the client's silence timeout, and never start another beside it.
        Only for the local server: a forwarded socket's server has its pid on its own host."""
        if self.socket != self.layout.socket:
            return
        pid = self._pid()
        if pid is not None and process_stopped(pid) and _is_server(pid):
            raise not_answering(pid, self.layout.root, stopped=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        log_fd = os.open(self.layout.log, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        server_env = child_environment()
        if os.environ.get("SHIPLANE_ALLOW_FAULTS") == "1":
            server_env["SHIPLANE_ALLOW_FAULTS"] = "1"  # test suites only; never its children
        try:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shiplane",
                    "server",
                    "--foreground",
                    "--root",
                    str(self.layout.root),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                start_new_session=True,
                env=server_env,
                close_fds=True,
            )
        finally:
            os.close(log_fd)

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the server to stop; fall back to signals. True when a server was running."""
        pid = self._pid()
        if self.ping() is not None:
            with contextlib.suppress(ServerError):
                self.request("POST", "/shutdown")
        elif pid is None:
            return False
        if pid is None:
            return True
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return True

    def _pid(self) -> int | None:
        try:
            pid = int(self.layout.pid.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None


def not_answering(pid: int | None, root: Path, *, stopped: bool) -> ServerNotAnswering:
    """The one message for a server that lives but does not answer (README: exit code 7)."""
    who = f"pid {pid}" if pid is not None else "pid unknown"
    why = "it is stopped (SIGSTOP)" if stopped else "it is stopped or overloaded"
    resume = f"`kill -CONT {pid}`" if pid is not None else "continue it"
    return ServerNotAnswering(
        f"shiplane server not answering ({who}): {why}; it holds {root}, so no second server "
        "is started beside it",
        next_action=f"{resume} and retry; or stop it (`shiplane server stop`, `kill {pid}`) "
        "and retry, which starts a fresh one"
        if pid is not None
        else "wait and retry; `shiplane server status` shows it",
    )


def _is_server(pid: int) -> bool:
    """The pid file's process is a shiplane server (not a reused pid of something else)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return b"shiplane" in b" ".join(argv) and b"server" in argv


def refuse_private_server() -> None:
    """On an enforced host the one server is supervisor's, run as its own user: a client that
    started a private one (as itself, over state it can write) would turn the protection into
    a pretence. It reports the server missing instead."""
    host = load_host_config()
    if host is None:
        return
    raise ServerUnavailable(
        f"the shiplane server of this enforced host does not answer at {host.socket}; "
        "clients do not start a private one here",
        next_action="ask the host's admin to start it: `supervisorctl start shiplane` (as root)",
    )


def _start_hint() -> str:
    if load_host_config() is not None:
        return "ask the host's admin to start it: `supervisorctl start shiplane` (as root)"
    return "run `shiplane server` to start it, then retry"


def _group_hint() -> str:
    host = load_host_config()
    group = host.group if host is not None else "the server's group"
    return (
        f"ask the host's admin to add you to the clients' group: `usermod -aG {group} $USER`, "
        "then log in again"
    )


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text
