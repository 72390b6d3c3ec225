"""The watch's verdict on one look at the new instance (shiplane.server.watch.verdict), and the
state.db record of a watch (shiplane.state.watches)."""

from __future__ import annotations

from pathlib import Path

from shiplane.server.watch import Sample, WatchSettings, verdict
from shiplane.state.db import StateDB
from shiplane.state.watches import WatchStore

SETTINGS = WatchSettings(seconds=60, failed_probes=3, min_requests=20, error_rate=0.1)


def sample(**changes: object) -> Sample:
    values: dict[str, object] = {
        "restarts": 0,
        "process_state": "running",
        "failed_probes": 0,
        "answered": 0,
        "errors": 0,
        **changes,
    }
    return Sample(**values)  # type: ignore[arg-type]


def test_a_healthy_instance_is_not_bad() -> None:
    assert verdict(sample(answered=500, errors=0), 0.0, SETTINGS) is None


def test_a_crash_is_bad_at_once() -> None:
    reason = verdict(sample(restarts=1), 0.0, SETTINGS)
    assert reason is not None and "crashed" in reason
    assert verdict(sample(process_state="crashed"), 0.0, SETTINGS) is not None


def test_failed_probes_count_only_in_a_row_up_to_the_setting() -> None:
    assert verdict(sample(failed_probes=2), 0.0, SETTINGS) is None
    reason = verdict(sample(failed_probes=3), 0.0, SETTINGS)
    assert reason is not None and "3 health probes" in reason


def test_errors_below_the_minimum_request_count_never_roll_back() -> None:
    # Every answer an error, but only 19 of them: a few clients cannot force a rollback.
    assert verdict(sample(answered=19, errors=19), 0.0, SETTINGS) is None
    reason = verdict(sample(answered=20, errors=4), 0.0, SETTINGS)
    assert reason is not None and "20%" in reason


def test_the_rate_is_judged_against_the_pre_switch_baseline() -> None:
    # The old version failed 15 % already: 20 % is within ten points of it.
    assert verdict(sample(answered=100, errors=20), 0.15, SETTINGS) is None
    assert verdict(sample(answered=100, errors=26), 0.15, SETTINGS) is not None


def test_a_watch_record_ends_once_and_a_restart_interrupts_what_ran(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    try:
        store = WatchStore(db)
        store.begin("dev-1", "dev", "i1", 60)
        assert store.get("dev-1")["state"] == "running"  # type: ignore[index]
        store.end("dev-1", "rolled_back", "crashed", "dev-2")
        store.end("dev-1", "clean")  # too late: the verdict stands
        ended = store.get("dev-1")
        assert ended is not None and ended["state"] == "rolled_back"
        assert ended["rollback_id"] == "dev-2" and ended["reason"] == "crashed"
        store.begin("dev-3", "dev", "i3", 60)
        assert store.interrupt_running() == ["dev-3"]
        latest = store.latest("dev")
        assert latest is not None and latest["deployment_id"] == "dev-3"
        assert latest["state"] == "interrupted"
    finally:
        db.close()
