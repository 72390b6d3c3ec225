"""What runs the enforced server and restarts it when it dies: a systemd unit, and for machines
without systemd a program for Debian's ``supervisor``. `shiplane server install` writes both;
whichever init the host has starts the one it reads.

Both run ``shiplane server --foreground --enforced`` as root on purpose: the server forks its
privileged broker (which starts app code as per-app users) before it drops to its own user.
A stop sends TERM to the server alone, which stops its instances in order; only after 60 s is
the rest of its process group killed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from shiplane.hostconfig import DEFAULT_ETC

PROGRAM = "shiplane"
UNIT = f"{PROGRAM}.service"
VERIFY_TIMEOUT = 60


class InstallOptions(Protocol):
    """What the units need of `server install`'s options (``shiplane.hostinstall``)."""

    @property
    def python(self) -> Path: ...
    @property
    def etc(self) -> Path: ...
    @property
    def log_dir(self) -> Path: ...


def _command(options: InstallOptions) -> str:
    return f"{options.python} -m shiplane server --foreground --enforced"


def supervisor_program(options: InstallOptions) -> str:
    lines = [
        f"[program:{PROGRAM}]",
        f"command={_command(options)}",
        "directory=/",
        "autostart=true",
        "autorestart=true",
        "startsecs=2",
        "stopsignal=TERM",
        "stopwaitsecs=60",
        "stopasgroup=false",
        "killasgroup=true",
        f"stdout_logfile={options.log_dir / 'server.log'}",
        "redirect_stderr=true",
    ]
    if options.etc != DEFAULT_ETC:
        lines.append(f'environment=SHIPLANE_ETC="{options.etc}"')
    return "\n".join(lines) + "\n"


def systemd_unit(options: InstallOptions) -> str:
    """``KillMode=mixed`` is supervisor's ``stopasgroup=false`` + ``killasgroup=true``: TERM to
    the server, KILL to what is left after ``TimeoutStopSec``."""
    service = [
        "Type=simple",
        "User=root",
        f"ExecStart={_command(options)}",
        "WorkingDirectory=/",
        "Restart=always",
        "RestartSec=2",
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=60",
        f"StandardOutput=append:{options.log_dir / 'server.log'}",
        "StandardError=inherit",
    ]
    if options.etc != DEFAULT_ETC:
        service.append(f'Environment="SHIPLANE_ETC={options.etc}"')
    return "\n".join(
        [
            "[Unit]",
            "Description=shiplane server (enforced mode)",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            *service,
            "",
            "[Install]",
            "WantedBy=multi-user.target",
            "",
        ]
    )


def verify_unit(unit: Path) -> str:
    """``systemd-analyze verify``'s verdict on ``unit``: "ok", "skipped: ..." where the tool
    is missing, or "failed: <what it said>". It exits 0 on many findings (a bad value is
    "ignored"), so anything it prints counts as a finding."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return "skipped: systemd-analyze not found"
    try:
        done = subprocess.run(
            [tool, "verify", str(unit)],
            capture_output=True,
            text=True,
            timeout=VERIFY_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"failed: systemd-analyze did not run: {exc}"
    said = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or said:
        return f"failed: {said or f'exit {done.returncode}'}"
    return "ok"
