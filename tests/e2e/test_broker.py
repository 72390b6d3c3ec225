"""The privileged broker with real OS users: what it starts runs as the environment's user,
and what it must refuse, it refuses."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiplane.launch.base import RunAs, run_captured
from shiplane.launch.brokered import BrokerLauncher


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temp dir other users can traverse (pytest's own are 0700 root): what the test's
    environment users cannot open must be refused for its own mode, not for its path."""
    path = Path(tempfile.mkdtemp(prefix="shiplane-enforced-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def broker(open_tmp: Path) -> Iterator[tuple[BrokerLauncher, str, Path]]:
    suffix = secrets.token_hex(3)
    server_user, apps_group, app = f"slsrv{suffix}", f"slapps{suffix}", f"b{suffix}"
    _run("groupadd", "--system", apps_group)
    _run("useradd", "--system", "--user-group", "--no-create-home", server_user)
    root = open_tmp / "root"
    (root / "apps" / app / "dev" / "releases" / "1").mkdir(parents=True)
    (root / "apps" / app / "dev" / "shared").mkdir(parents=True)
    for path in (root, root / "apps", root / "apps" / app, root / "apps" / app / "dev",
                 root / "apps" / app / "dev" / "releases"):  # fmt: skip
        path.chmod(0o711)
    launcher = BrokerLauncher.start(root, apps_group, server_user)
    try:
        yield launcher, app, root
    finally:
        launcher.close()
        for user in (RunAs(app, "dev").user, RunAs(app, "prod").user, server_user):
            subprocess.run(["userdel", user], capture_output=True, timeout=30)
        subprocess.run(["groupdel", apps_group], capture_output=True, timeout=30)


def test_runs_as_the_environment_user(broker: tuple[BrokerLauncher, str, Path]) -> None:
    launcher, app, root = broker
    release = root / "apps" / app / "dev" / "releases" / "1"
    launcher.prepare(release, RunAs(app, "dev"))
    done = run_captured(
        launcher,
        ["id", "-un"],
        run_as=RunAs(app, "dev"),
        cwd=release,
        env={"PATH": os.environ["PATH"]},
        timeout=10,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == RunAs(app, "dev").user


def test_the_environment_user_cannot_read_server_files(
    broker: tuple[BrokerLauncher, str, Path],
) -> None:
    launcher, app, root = broker
    secret = root / "apps" / app / "state.db"
    secret.write_text("pinned protection")
    secret.chmod(0o600)
    release = root / "apps" / app / "dev" / "releases" / "1"
    launcher.prepare(release, RunAs(app, "dev"))
    done = run_captured(
        launcher,
        ["cat", str(secret)],
        run_as=RunAs(app, "dev"),
        cwd=release,
        env={"PATH": os.environ["PATH"]},
        timeout=10,
    )
    assert done.returncode != 0
    assert "Permission denied" in done.stderr


def test_timeout_kills_the_group(broker: tuple[BrokerLauncher, str, Path]) -> None:
    launcher, app, root = broker
    release = root / "apps" / app / "dev" / "releases" / "1"
    launcher.prepare(release, RunAs(app, "dev"))
    started = time.monotonic()
    done = run_captured(
        launcher,
        ["sh", "-c", "sleep 60 & sleep 60"],
        run_as=RunAs(app, "dev"),
        cwd=release,
        env={"PATH": os.environ["PATH"]},
        timeout=1,
    )
    assert done.timed_out
    assert time.monotonic() - started < 15
    # The background sleep (a worker of the group) went with its leader (a zombie left for
    # init to reap is gone in all but name).
    states = subprocess.run(
        ["ps", "-u", RunAs(app, "dev").user, "-o", "stat="],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.split()
    assert [state for state in states if not state.startswith("Z")] == []


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_refuses_users_that_are_not_environment_users(
    broker: tuple[BrokerLauncher, str, Path], user: str
) -> None:
    launcher, _app, root = broker
    with pytest.raises(OSError, match="refused"):
        launcher.call(
            {"op": "spawn", "user": user, "argv": ["true"], "cwd": str(root), "env": {}},
            [os.open(os.devnull, os.O_RDONLY) for _ in range(3)],
        )


def test_refuses_to_hand_over_what_is_not_the_environments(
    broker: tuple[BrokerLauncher, str, Path],
) -> None:
    launcher, app, root = broker
    launcher.ensure_user(RunAs(app, "dev"))
    launcher.ensure_user(RunAs(app, "prod"))
    (root / "apps" / app / "prod" / "shared").mkdir(parents=True)
    for path in (root / "apps" / app / "state.db", root / "apps" / app / "prod" / "shared"):
        with pytest.raises(OSError, match="refused"):
            launcher.call(
                {"op": "own", "path": str(path), "user": RunAs(app, "dev").user, "kind": "shared"}
            )


def test_signals_only_its_own_children(broker: tuple[BrokerLauncher, str, Path]) -> None:
    launcher, _app, _root = broker
    with pytest.raises(OSError, match="refused"):
        launcher.call({"op": "signal", "pid": os.getpid(), "sig": int(signal.SIGTERM)})


def test_shared_dir_files_stay_open_to_both_users(
    broker: tuple[BrokerLauncher, str, Path],
) -> None:
    """A database file the server created (before or after the hand-over) is writable by the
    environment's user, and one the app created is writable by the server: SQLite's -wal and
    -shm files must open for both."""
    launcher, app, root = broker
    shared = root / "apps" / app / "dev" / "shared"
    (shared / "before.db").write_text("")
    launcher.prepare(shared, RunAs(app, "dev"))
    release = root / "apps" / app / "dev" / "releases" / "1"
    launcher.prepare(release, RunAs(app, "dev"))
    done = run_captured(
        launcher,
        ["sh", "-c", f"echo app >> {shared}/before.db && echo app > {shared}/by-app.db"],
        run_as=RunAs(app, "dev"),
        cwd=release,
        env={"PATH": os.environ["PATH"]},
        timeout=10,
    )
    assert done.returncode == 0, done.stderr
    # What the server writes later: owned by root here (the test's server), open to the app.
    assert (shared / "before.db").read_text() == "app\n"
    assert os.stat(shared / "by-app.db").st_uid != 0
