"""Every error is JSON with a documented exit code, never a traceback: a full disk, a read-only
file system, permission denied (exit 7, naming the file); a config over 1 MB or nested deeper
than 64 levels, and ids that are no ids (exit 64, nothing written). Real CLI, real server,
real mounts (the tests run as root: tmpfs, remount read-only, capabilities dropped)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.app_repo import SHIPLANE, AppRepo, Run


def listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def assert_json_error(run: Run, code: int, *fragments: str) -> None:
    assert run.code == code, run.stdout + run.stderr
    assert run.data["ok"] is False and run.data["exit_code"] == code
    for fragment in fragments:
        assert fragment in run.data["error"]["message"], run.data["error"]
    assert run.data["error"]["next_action"]
    assert "Traceback" not in run.stdout + run.stderr


@contextmanager
def full_disk(directory: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs over ``directory``, filled to the last byte."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], check=True, timeout=30
    )
    try:
        fd = os.open(directory / "filler", os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass  # full: that was the point
        finally:
            os.close(fd)
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True, timeout=30)


def test_a_full_read_only_disk_gives_json_and_exit_7(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0

    # No room for state.db's copy: the deployment itself still succeeds, and says so.
    with full_disk(app_repo.root / "state-backups"):
        app_repo.git("checkout", "-q", "dev")
        app_repo.commit("second", {"NOTE.txt": "2\n"})
        second = app_repo.shiplane("deploy", "dev")
        assert second.code == 0, second.stdout + second.stderr
        assert any("could not be copied" in w for w in second.data["warnings"])

    backups = app_repo.root / "dev" / "backups"
    before = listing(backups)
    with full_disk(backups):
        # A backup that cannot be written is the backup's failure (exit 3), with the cause.
        full = app_repo.shiplane("backup", "dev")
        assert_json_error(full, 3, "disk is full")
        assert "free space" in full.data["error"]["next_action"]
        subprocess.run(["mount", "-o", "remount,ro", str(backups)], check=True, timeout=30)
        read_only = app_repo.shiplane("backup", "dev")
        assert_json_error(read_only, 3)
        assert "read-only" in read_only.data["error"]["message"].lower()
    assert listing(backups) == before

    # The server carries on once there is room again.
    assert app_repo.shiplane("backup", "dev").code == 0


def test_a_full_home_at_0_bytes_gives_json_and_comes_back(app_repo: AppRepo) -> None:
    """The whole of SHIPLANE_HOME on a disk with 0 bytes free, server running: every command
    answers JSON with exit 7 (storage, "disk is full"); with room again, they work."""
    app_repo.home.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(app_repo.home)],
        check=True,
        timeout=30,
    )
    try:
        assert app_repo.shiplane("deploy", "dev").code == 0
        app_repo.git("checkout", "-q", "dev")
        app_repo.commit("second", {"NOTE.txt": "2\n"})
        filler = app_repo.home / "filler"
        fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            while os.write(fd, b"\0" * 65536):
                pass
        except OSError:
            pass  # 0 bytes free
        finally:
            os.close(fd)
        for command in (("status",), ("history",), ("deploy", "dev"), ("backup", "dev")):
            run = app_repo.shiplane(*command)
            assert_json_error(run, 7, "disk is full")
        filler.unlink()
        assert app_repo.shiplane("status", "dev").code == 0
        assert app_repo.shiplane("history", "dev").code == 0
    finally:
        app_repo.stop_server()
        subprocess.run(["umount", "-l", str(app_repo.home)], check=True, timeout=30)


def test_permission_denied_gives_json_and_exit_7(app_repo: AppRepo, tmp_path: Path) -> None:
    home = tmp_path / "locked"
    home.mkdir(mode=0)
    try:
        # Root without the capabilities that ignore file modes: a user like any other.
        proc = subprocess.run(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *SHIPLANE, "status"],
            cwd=app_repo.path,
            env={**app_repo.env, "SHIPLANE_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        home.chmod(0o700)
    run = Run(proc.returncode, json.loads(proc.stdout or "{}"), proc.stdout, proc.stderr)
    assert_json_error(run, 7, "permission denied", str(home))


def test_deep_and_huge_configs_exit_64_naming_the_file(app_repo: AppRepo) -> None:
    config = app_repo.path / "shiplane.toml"
    good = config.read_text()
    cases = {
        "deep arrays": good + "\n[x]\na = " + "[" * 20_000 + "]" * 20_000 + "\n",
        "deep tables": good + "\n[x]\na = " + "{b = " * 70 + "1" + "}" * 70 + "\n",
        "huge string": good + '\n[x]\na = "' + "x" * (10 * 1024 * 1024) + '"\n',
    }
    for name, text in cases.items():
        config.write_text(text)
        run = app_repo.shiplane("deploy", "dev")
        assert_json_error(run, 64, str(config))
        assert "RecursionError" not in run.stdout, name
        assert not app_repo.home.exists(), name  # nothing written, no server started


def test_ids_are_checked_before_anything_is_written(app_repo: AppRepo) -> None:
    bad = {
        ("restore", "dev", ".", "--yes"): "backup id",
        ("restore", "dev", "..", "--yes"): "backup id",
        ("restore", "dev", "x" * 5000, "--yes"): "5000 characters",
        ("restore", "dev", "../../etc", "--yes"): "backup id",
        ("logs", "y" * 5000): "deployment id",
        ("rollback", "dev", "--to", "../x"): "release name or sha",
        ("report", "a/b"): "verification id",
        ("deploy", "d" * 300): "environment name",
    }
    for args, fragment in bad.items():
        run = app_repo.shiplane(*args)
        assert_json_error(run, 64, fragment)
        assert len(run.stdout) < 2000  # a 5,000-character id is not echoed back whole
    assert not app_repo.home.exists()


def test_ids_on_a_deployed_env_take_no_safety_backup(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    backups = app_repo.root / "dev" / "backups"
    before = listing(backups)
    for backup_id in (".", "..", "z" * 5000):
        run = app_repo.shiplane("restore", "dev", backup_id, "--yes")
        assert_json_error(run, 64, "backup id")
    assert listing(backups) == before
