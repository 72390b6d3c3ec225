"""The pure parts of state.db's protection and of honest errors: damage detection, copies and
their pruning, outcomes, config limits and id checks (real SQLite files in tmp_path)."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from shiplane.config.loader import MAX_CONFIG_DEPTH, load_toml
from shiplane.errors import ConfigError, StateDamagedError, StorageError
from shiplane.ids import check_id
from shiplane.operations.failures import translate
from shiplane.state import backups, integrity
from shiplane.state.db import StateDB
from shiplane.state.outcomes import outcome


def make_db(path: Path) -> None:
    db = StateDB(path)
    db.create_deployment(id="dev-1", env="dev", kind="deploy")
    db.close()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty"),
        (b"garbage that is not sqlite at all", "header"),
        (integrity.MAGIC + b"\0" * 10, "truncated"),
    ],
)
def test_a_damaged_state_db_is_never_opened(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(content)
    with pytest.raises(StateDamagedError, match=problem) as caught:
        StateDB(path)
    assert caught.value.exit_code == 7 and "state restore" in str(caught.value.next_action)
    assert path.read_bytes() == content  # left as it was


def test_a_lost_state_db_with_copies_is_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_db(path)
    backups.take(path)
    path.unlink()
    with pytest.raises(StateDamagedError, match="missing"):
        StateDB(path)
    assert not path.exists()


def test_a_new_state_db_appears_whole(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateDB(path).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db"]  # no scratch left
    assert integrity.is_sane(path)


def test_copies_are_pruned_and_a_damaged_copy_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_db(path)
    taken = [backups.take(path, keep=3) for _ in range(5)]
    assert backups.listed(path) == sorted(taken[-3:], reverse=True)
    taken[-1].write_bytes(b"broken")
    assert backups.newest_sane(path) == taken[-2]
    conn = sqlite3.connect(taken[-2])
    assert conn.execute("SELECT id FROM deployments").fetchall() == [("dev-1",)]
    conn.close()


def test_outcomes() -> None:
    switched = [{"name": "switch", "status": "undone"}, {"name": "start", "status": "undone"}]
    not_switched = [{"name": "build", "status": "failed"}, {"name": "export", "status": "undone"}]
    assert outcome({"status": "rolled_back", "exit_code": 2}, not_switched) == "aborted"
    assert outcome({"status": "rolled_back", "exit_code": 3}, switched) == "rolled_back"
    assert outcome({"status": "rolled_back", "exit_code": 4}, []) == "rolled_back"
    assert outcome({"status": "rollback_failed", "exit_code": 5}, []) == "failed_critical"
    undo_failed = [{"name": "resolve", "status": "undo_failed"}]
    assert outcome({"status": "recovered", "exit_code": 3}, undo_failed) == "failed_critical"
    assert outcome({"status": "succeeded", "exit_code": 0}, []) == "succeeded"
    assert outcome({"status": "rolled_back_after_watch"}, switched) == "rolled_back_after_watch"


def test_config_limits() -> None:
    path = Path("/repo/shiplane.toml")
    assert load_toml("a = " + "[" * (MAX_CONFIG_DEPTH - 2) + "]" * (MAX_CONFIG_DEPTH - 2), path)
    for text in (
        "a = " + "[" * 20_000 + "]" * 20_000,
        "a = " + "[" * MAX_CONFIG_DEPTH + "]" * MAX_CONFIG_DEPTH,
        'a = "' + "x" * (1024 * 1024) + '"',
    ):
        with pytest.raises(ConfigError, match=str(path)) as caught:
            load_toml(text, path)
        assert caught.value.exit_code == 64


@pytest.mark.parametrize("bad", [".", "..", "a/b", "../x", "", "x" * 129, "-x", "a b", "é"])
def test_bad_ids(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_id("backup id", bad)
    assert caught.value.exit_code == 64 and len(caught.value.message) < 300


@pytest.mark.parametrize("good", ["dev", "20261128-053224-123456", "3-abc1234", "prod.eu_1"])
def test_good_ids(good: str) -> None:
    check_id("id", good)


def test_storage_failures_are_named() -> None:
    full = translate(OSError(errno.ENOSPC, "No space left on device", "/srv/x"))
    assert isinstance(full, StorageError) and full.exit_code == 7
    assert "disk is full" in full.message and "/srv/x" in full.message
    read_only = translate(sqlite3.OperationalError("attempt to write a readonly database"))
    assert read_only is None or read_only.exit_code == 7
    assert translate(ValueError("no")) is None


def test_a_copy_follows_deployments_verifications_and_pins(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    make_db(path)
    db = StateDB(path)
    try:
        mark = backups.changes(db)
        assert backups.after(db, mark) is None and backups.listed(path) == []  # nothing new
        db.add_verification(
            id="v1", env="dev", sha="abc", config_hash="h", phase="serving", only_group=None,
            passed=True, deployment_id=None, created_at="now", created_epoch=0.0, results=[],
        )  # fmt: skip
        assert backups.after(db, mark) is None and len(backups.listed(path)) == 1
        mark = backups.changes(db)
        db.conn.execute(
            "INSERT INTO pins (env, settings, pinned_at, pinned_by) VALUES ('prod', '{}', 't', 'p')"
        )
        assert backups.after(db, mark) is None and len(backups.listed(path)) == 2
    finally:
        db.close()
