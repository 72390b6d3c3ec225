"""End-to-end: real git repo, real shiplane server, real gunicorn instances, real HTTP."""

from __future__ import annotations

import subprocess

import httpx

from tests.support.app_repo import SHIPLANE, AppRepo
from tests.support.sqlite_util import columns, dump


def get_json(url: str) -> dict:
    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


def test_happy_path_dev_then_prod(app_repo: AppRepo) -> None:
    app_repo.git("checkout", "-qb", "feature/v11")
    sha = app_repo.commit("notes 1.1.0", {"VERSION": "1.1.0\n"})
    branches = app_repo.local_branches()

    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout
    assert run.data["ok"] is True and run.data["command"] == "deploy"
    names = [s["name"] for s in run.data["steps"]]
    assert names == [
        "lock",
        "resolve",
        "export",
        "build",
        "guard",
        "backup",
        "migrate",
        "release",
        "start",
        "health",
        "verify",
        "switch",
        "smoke",
        "workers",
        "drain",
        "record",
        "prune",
    ]
    assert all(isinstance(s["duration_ms"], int) for s in run.data["steps"])
    # The feature branch was merged into the server's dev (a fast-forward here) and that commit
    # serves; the user's repository sees it as shiplane/dev, their own branches did not move.
    assert app_repo.remote_branch("dev") == sha
    assert app_repo.local_branches() == branches
    assert get_json(app_repo.url("dev", "/_deploy/version"))["sha"] == sha
    assert get_json(app_repo.url("dev", "/api/version")) == {"sha": sha, "version": "1.1.0"}
    created = httpx.post(app_repo.url("dev", "/api/notes"), json={"title": "a"}, timeout=5)
    assert created.status_code == 201
    assert "<h1>Notes</h1>" in httpx.get(app_repo.url("dev", "/"), timeout=5).text

    assert app_repo.shiplane("verify", "dev").code == 0
    run = app_repo.shiplane("promote", "prod")
    assert run.code == 0, run.stdout
    # The server's main fast-forwarded to what dev verified; the user's main stayed put.
    assert app_repo.remote_branch("main") == sha
    assert app_repo.local_branches() == branches
    assert get_json(app_repo.url("prod", "/api/version"))["version"] == "1.1.0"
    # prod has its own database: dev's notes are not there, and prod's checks did not write.
    assert get_json(app_repo.url("prod", "/api/notes"))["notes"] == []
    backups = app_repo.shiplane("backups", "prod")
    assert backups.code == 0 and len(backups.data["backups"]) == 1

    status = app_repo.shiplane("status")
    assert status.code == 0
    for env in ("dev", "prod"):
        info = status.data["envs"][env]
        assert info["healthy"] and info["consistent"] and info["serving_sha"] == sha
        assert info["migrations"]["applied"] == ["001_create_notes", "002_add_tags"]

    history = app_repo.shiplane("history", "dev")
    deployment_id = history.data["deployments"][0]["id"]
    logs = app_repo.shiplane("logs", deployment_id)
    assert logs.code == 0 and "compileall" in logs.data["log"]


def test_rollback_reverts_migration_with_down(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    httpx.post(app_repo.url("dev", "/api/notes"), json={"title": "kept"}, timeout=5)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit(
        "add pinned",
        {
            "VERSION": "2.0.0\n",
            "migrations/003_add_pinned.sql": "ALTER TABLE notes ADD COLUMN pinned INTEGER"
            " NOT NULL DEFAULT 0;\n-- down\nALTER TABLE notes DROP COLUMN pinned;\n",
        },
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    assert "pinned" in columns(db, "notes")

    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout
    # Additive: the old release passes its checks on the new schema, so the code goes back
    # and the schema (with every write to it) stays (issue 12).
    assert run.data["database"]["action"] == "kept"
    assert run.data["database"]["reverted"] == []
    assert "pinned" in columns(db, "notes")
    assert get_json(app_repo.url("dev", "/api/version"))["version"] == "1.0.0"
    titles = [n["title"] for n in get_json(app_repo.url("dev", "/api/notes"))["notes"]]
    assert "kept" in titles  # the data written after the deploy stays

    # Forward again (on purpose: the commit was rolled back), then roll back restoring the
    # backup: the deploy's checks wrote notes since it was taken, so the checked restore
    # refuses (exit 6) without --discard-writes, and with it saves them first as a
    # pre-restore backup.
    assert app_repo.shiplane("deploy", "dev", "--include-rolled-back").code == 0
    refused = app_repo.shiplane("rollback", "dev", "--restore-db")
    assert refused.code == 6, refused.stdout
    assert "written since backup" in refused.data["error"]["message"]
    assert "pinned" in columns(db, "notes")
    run = app_repo.shiplane("rollback", "dev", "--restore-db", "--discard-writes")
    assert run.code == 0, run.stdout
    assert run.data["database"]["action"] == "restore"
    assert run.data["database"]["pre_restore_backup"]
    assert "pinned" not in columns(db, "notes")


def test_build_failure_exits_2_and_old_version_serves(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = get_json(app_repo.url("dev", "/_deploy/version"))["sha"]
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("broken", {"app.py": "def broken(:\n"})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 2
    assert run.data["error"]["step"] == "build"
    assert run.data["error"]["next_action"]
    assert get_json(app_repo.url("dev", "/_deploy/version"))["sha"] == before
    releases = sorted(p.name for p in (app_repo.root / "dev" / "releases").iterdir())
    assert len(releases) == 1  # the failed release directory was removed


def test_never_healthy_exits_3_and_old_version_serves(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = get_json(app_repo.url("dev", "/_deploy/version"))["sha"]
    app_repo.git("checkout", "-q", "dev")
    config = (app_repo.path / "shiplane.toml").read_text()
    app_repo.commit(
        "unhealthy",
        {
            "app.py": (app_repo.path / "app.py")
            .read_text()
            .replace("return jsonify(ok=True, version=VERSION)", "return jsonify(ok=False), 500")
        },
    )
    (app_repo.path / "shiplane.toml").write_text(
        config.replace("timeout = 8.0", "timeout = 8.0\nretries = 3")
    )
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3
    assert run.data["error"]["step"] == "health"
    assert "never became healthy" in run.data["error"]["message"]
    assert "(3 checks)" in run.data["error"]["message"]
    assert get_json(app_repo.url("dev", "/_deploy/version"))["sha"] == before
    status = app_repo.shiplane("server", "status")
    instances = status.data["envs"]["dev"]["instances"]
    assert len(instances) == 1 and instances[0]["serving"]  # the unhealthy one was stopped


def test_failing_migration_restores_database_exit_3(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    for title in ("one", "two"):
        httpx.post(app_repo.url("dev", "/api/notes"), json={"title": title}, timeout=5)
    db = app_repo.root / "dev" / "shared" / "notes.db"
    before = dump(db)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit(
        "bad migration",
        {
            "VERSION": "3.0.0\n",
            "migrations/003_half.py": (
                "def up(db):\n"
                "    db.execute(\"UPDATE notes SET title = title || '!'\")\n"
                "    db.execute('CREATE TABLE audit (id INTEGER PRIMARY KEY)')\n"
                "    db.execute('INSERT INTO no_such_table VALUES (1)')\n\n"
                "def down(db):\n    db.execute('DROP TABLE audit')\n"
            ),
        },
    )
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3, run.stdout
    assert run.data["error"]["step"] == "migrate"
    assert "003_half" in run.data["error"]["message"]
    assert dump(db) == before
    assert get_json(app_repo.url("dev", "/api/version"))["version"] == "1.0.0"


def test_crash_at_switch_is_recovered_by_status(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    before = get_json(app_repo.url("dev", "/_deploy/version"))["sha"]
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "switch:kill-after"})
    assert run.code == 7  # the deploy died right after traffic moved
    # The crashed deploy had switched: the new version may serve until recovery.
    status = app_repo.shiplane("status", "dev")
    assert status.code == 0
    assert status.data["recovered"][0]["status"] == "recovered"
    info = status.data["envs"]["dev"]
    assert info["serving_sha"] == before and info["consistent"] and info["lock"] is None
    server = app_repo.shiplane("server", "status").data
    assert len(server["envs"]["dev"]["instances"]) == 1  # the green instance was stopped
    # And the next deploy works without manual steps.
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert get_json(app_repo.url("dev", "/api/version"))["version"] == "2.0.0"


def test_lock_held_refuses_second_deploy(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit("v2", {"VERSION": "2.0.0\n"})
    slow = dict(app_repo.env)
    app_repo.slow_build(3)
    first = subprocess.Popen(
        [*SHIPLANE, "deploy", "dev", "--json"],
        cwd=app_repo.path,
        env=slow,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        import time

        deadline = time.monotonic() + 20
        holder = None
        while holder is None and time.monotonic() < deadline:
            holder = app_repo.shiplane("status", "dev").data["envs"]["dev"]["lock"]
            time.sleep(0.1)
        assert holder is not None, "the first deploy never took the lock"
        second = app_repo.shiplane("deploy", "dev")
        assert second.code == 6, second
        assert f"locked by deployment {holder}" in second.data["error"]["message"]
    finally:
        out, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out
