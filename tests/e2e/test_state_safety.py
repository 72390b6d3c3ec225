"""state.db is protected: a copy after every deployment, a damaged or empty one never silently
recreated (exit 7, naming the file and `shiplane state restore`), and a person's restore that
brings the history back without rolling the pins back. Real server, real CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.support.app_repo import AppRepo, Run
from tests.support.approvers import as_person, enroll


def copies(app_repo: AppRepo) -> list[Path]:
    return sorted((app_repo.root / "state-backups").glob("state-*.db"))


def pins(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return {env: by for env, by in conn.execute("SELECT env, pinned_by FROM pins")}
    finally:
        conn.close()


def deployment_ids(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT id FROM deployments ORDER BY id")]
    finally:
        conn.close()


def assert_damaged(run: Run, state_db: Path) -> None:
    assert run.code == 7, run.stdout + run.stderr
    error = run.data["error"]
    assert str(state_db) in error["message"]
    assert "shiplane state restore" in error["next_action"]
    assert "Traceback" not in run.stdout + run.stderr


def test_garbage_header_exits_7_and_a_person_restores_history(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    factor = enroll(app_repo, tmp_path)
    first = app_repo.shiplane("deploy", "dev")
    assert first.code == 0, first.stdout + first.stderr
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("second", {"NOTE.txt": "2\n"})
    second = app_repo.shiplane("deploy", "dev")
    assert second.code == 0, second.stdout + second.stderr
    assert len(copies(app_repo)) >= 2  # one per deployment
    state_db = app_repo.root / "state.db"
    ids_before = deployment_ids(state_db)
    assert {first.data["deployment_id"], second.data["deployment_id"]} <= set(ids_before)
    assert "prod" in pins(state_db)  # the first deploy pinned the gated env
    serving = app_repo.shiplane("status", "dev").data["envs"]["dev"]["release"]

    oldest = copies(app_repo)[0]
    assert pins(oldest)["prod"] != "person:alice"
    # A pin changed after the last deployment (a person re-pins): it leaves a copy too, and
    # no restore rolls it back.
    protected = app_repo.shiplane("protect", "prod", extra_env=as_person(factor))
    assert protected.code == 0, protected.stdout
    assert pins(state_db)["prod"] == "person:alice"
    assert pins(copies(app_repo)[-1])["prod"] == "person:alice"

    with state_db.open("r+b") as handle:  # a garbage header
        handle.write(b"this is not a database at all!!")
    for command in (("status",), ("history",), ("deploy", "dev")):
        assert_damaged(app_repo.shiplane(*command), state_db)
    assert state_db.read_bytes().startswith(b"this is not")  # left as it was

    # What needs no state still works.
    codes = app_repo.shiplane("exit-codes", "--json")
    assert codes.code == 0 and "state restore" in codes.data["exit_codes"]["7"]
    backup = app_repo.shiplane("backup", "dev")
    assert backup.code == 0, backup.stdout
    assert any("state.db is damaged" in w for w in backup.data["warnings"])
    assert backup.data["backup"]["release"]  # read from the env's `current` link

    # A person's decision: no factor, no restore.
    refused = app_repo.shiplane("state", "restore")
    assert refused.code == 6, refused.stdout
    assert refused.data["error"]["step"] == "factor"
    agent = app_repo.shiplane(
        "state", "restore", extra_env={**as_person(factor), "SHIPLANE_ACTOR": "agent:bot"}
    )
    assert agent.code == 6, agent.stdout

    restored = app_repo.shiplane("state", "restore", extra_env=as_person(factor))
    assert restored.code == 0, restored.stdout + restored.stderr
    assert restored.data["restored_by"] == "person:alice"
    assert Path(restored.data["set_aside"]).read_bytes().startswith(b"this is not")
    assert set(deployment_ids(state_db)) >= set(ids_before)
    assert pins(state_db)["prod"] == "person:alice"  # from the newest copy
    history = app_repo.shiplane("history", "dev")
    assert history.code == 0
    assert second.data["deployment_id"] in [d["id"] for d in history.data["deployments"]]
    status = app_repo.shiplane("status", "dev")
    assert status.code == 0, status.stdout
    assert status.data["envs"]["dev"]["release"] == serving

    # An older copy on purpose, over a readable state.db: the pins stay the current ones.
    older = app_repo.shiplane(
        "state", "restore", "--from", str(oldest), extra_env=as_person(factor)
    )
    assert older.code == 0, older.stdout + older.stderr
    assert older.data["kept"]["pins"] == str(state_db)
    assert pins(state_db)["prod"] == "person:alice"
    assert second.data["deployment_id"] not in deployment_ids(state_db)


def test_empty_state_db_is_not_recreated_even_by_a_starting_server(
    app_repo: AppRepo, tmp_path: Path
) -> None:
    factor = enroll(app_repo, tmp_path)
    deployed = app_repo.shiplane("deploy", "dev")
    assert deployed.code == 0, deployed.stdout + deployed.stderr
    release = app_repo.shiplane("status", "dev").data["envs"]["dev"]["release"]
    app_repo.stop_server()
    state_db = app_repo.root / "state.db"
    state_db.write_bytes(b"")  # truncated to 0 bytes
    for suffix in ("-wal", "-shm"):
        Path(f"{state_db}{suffix}").unlink(missing_ok=True)

    # The client starts a server, which must neither hang nor crash on it: JSON, exit 7.
    assert_damaged(app_repo.shiplane("status", timeout=120), state_db)
    assert state_db.stat().st_size == 0  # never silently recreated
    assert app_repo.shiplane("exit-codes").code == 0

    # An older copy by hand, then the newest by default.
    oldest = copies(app_repo)[0]
    restored = app_repo.shiplane(
        "state", "restore", "--from", str(oldest), extra_env=as_person(factor)
    )
    assert restored.code == 0, restored.stdout + restored.stderr
    assert restored.data["restored_from"] == str(oldest)
    assert restored.data["kept"]["pins"] is not None  # from the newest good copy
    again = app_repo.shiplane("state", "restore", extra_env=as_person(factor))
    assert again.code == 0, again.stdout
    assert again.data["restored_from"] == str(copies(app_repo)[-1])
    status = app_repo.shiplane("status", "dev")
    assert status.code == 0, status.stdout
    assert status.data["envs"]["dev"]["release"] == release
    assert deployed.data["deployment_id"] in deployment_ids(state_db)


def test_restore_from_a_bad_file_is_a_usage_error(app_repo: AppRepo, tmp_path: Path) -> None:
    factor = enroll(app_repo, tmp_path)
    bogus = tmp_path / "bogus.db"
    bogus.write_text(json.dumps({"not": "sqlite"}))
    run = app_repo.shiplane("state", "restore", "--from", str(bogus), extra_env=as_person(factor))
    assert run.code == 64, run.stdout
    assert str(bogus) in run.data["error"]["message"]
