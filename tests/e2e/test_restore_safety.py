"""Restores that cannot be half-done (issue 12, Must have 2): a server SIGKILLed inside a
`shiplane restore` leaves nothing the next command trips on; an encrypted backup is restored
by a failing deploy's undo; a backup whose migrations are not the serving release's is
refused. The PostgreSQL swap is in test_restore_swap.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from shiplane.backup import list_backups
from tests.support.app_repo import AppRepo
from tests.support.encryption import encrypt_dev_backups
from tests.support.faults import without_checks
from tests.support.sqlite_util import columns, dump


def notes(app_repo: AppRepo) -> list[dict[str, object]]:
    response = httpx.get(app_repo.url("dev", "/api/notes"), timeout=10)
    result: list[dict[str, object]] = response.json()["notes"]
    return result


def write_notes(app_repo: AppRepo, prefix: str, count: int, body: str = "") -> None:
    for i in range(count):
        response = httpx.post(
            app_repo.url("dev", "/api/notes"),
            json={"title": f"{prefix} {i}", "body": body},
            timeout=10,
        )
        assert response.status_code == 201


def strays(backups: Path) -> list[str]:
    """Anything in the backups directory that is not a complete backup."""
    return sorted(
        p.name
        for p in backups.iterdir()
        if p.name.startswith(".") or not (p / "manifest.json").is_file()
    )


def test_killed_restore_leaves_nothing_half_done(app_repo: AppRepo) -> None:
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    # More than SQLite's page cache (2 MB): the killed load has written into the database
    # file itself, so only the journal can take it back.
    write_notes(app_repo, "before", 20, body="x" * 200_000)
    backup_id = app_repo.shiplane("backup", "dev").data["backup"]["id"]
    at_backup = notes(app_repo)
    write_notes(app_repo, "after", 5)
    db = app_repo.root / "dev" / "shared" / "notes.db"
    journal = db.with_name("notes.db-journal")
    backups = app_repo.root / "dev" / "backups"
    before, listed = dump(db), [m["id"] for m in list_backups(backups)]
    restore = ("restore", "dev", backup_id, "--yes", "--discard-writes")

    # Killed while it writes the pre-restore backup: a directory without a manifest, never
    # listed as a backup.
    run = app_repo.shiplane(*restore, extra_env={"SHIPLANE_FAULT": "backup-archive:sigkill"})
    assert run.code == 7, run.stdout
    assert [name for name in strays(backups) if name.startswith(".partial-")], strays(backups)
    assert [m["id"] for m in list_backups(backups)] == listed

    # Killed in the middle of loading the backup (the next command first clears what the
    # first kill left): the transaction's hot journal, and the scratch copy.
    run = app_repo.shiplane(*restore, extra_env={"SHIPLANE_FAULT": "restore-load:sigkill"})
    assert run.code == 7, run.stdout
    assert journal.is_file()
    assert [name for name in strays(backups) if name.startswith(".scratch-")], strays(backups)
    assert not [name for name in strays(backups) if name.startswith(".partial-")]
    # What the issue saw: a reader that may not write cannot roll the journal back.
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("SELECT count(*) FROM notes").fetchone()
    finally:
        reader.close()

    status = app_repo.shiplane("status", "dev")
    assert status.code == 0, status.stdout
    info = status.data["envs"]["dev"]
    assert info["healthy"] and info["lock"] is None, info
    # The journal is rolled back by the first read-write opener: recovery (settle), or the
    # app's instance the restarted server starts before it (tests/unit covers settle alone).
    cleaned = [r for r in status.data["recovered"] if r["status"] == "cleaned"]
    assert cleaned and "removed .scratch-" in cleaned[0]["action"], cleaned
    assert not journal.exists() and strays(backups) == []
    assert dump(db) == before  # the killed restore changed nothing: the old database
    assert [n["title"] for n in notes(app_repo)].count("after 0") == 1

    # The next backup and restore work, and leave nothing behind.
    assert app_repo.shiplane("backup", "dev").code == 0
    restored = app_repo.shiplane(*restore)
    assert restored.code == 0, restored.stdout
    assert notes(app_repo) == at_backup
    ids = [m["id"] for m in list_backups(backups)]
    assert restored.data["pre_restore_backup"] in ids
    assert not journal.exists() and strays(backups) == []


def test_failing_deploy_restores_an_encrypted_backup(app_repo: AppRepo, tmp_path: Path) -> None:
    """An irreversible migration cannot be reverted by `down`: the undo restores the deploy's
    backup (nothing was written since), which is age-encrypted; so does `rollback
    --restore-db`."""
    encrypt_dev_backups(app_repo, tmp_path / "keys")
    config = app_repo.path / "shiplane.toml"
    without_checks(config)  # commits the encryption setting with it
    app_repo.git("branch", "-f", "dev")  # the deploy from dev reads its own shiplane.toml
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    before = dump(db)
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit(
        "one way",
        {
            "VERSION": "2.0.0\n",
            "migrations/003_legacy.sql": "-- shiplane: irreversible\n"
            "ALTER TABLE notes ADD COLUMN legacy TEXT;\n",
        },
    )
    run = app_repo.shiplane("deploy", "dev", extra_env={"SHIPLANE_FAULT": "verify:fail"})
    assert run.code == 3, run.stdout
    assert "restored from backup" in run.stdout, run.stdout
    assert "legacy" not in columns(db, "notes")
    assert dump(db) == before

    # `rollback --restore-db` restores the (encrypted) backup the next deploy took.
    app_repo.commit(
        "reversible",
        {
            "migrations/003_legacy.sql": "ALTER TABLE notes ADD COLUMN legacy TEXT;\n"
            "-- down\nALTER TABLE notes DROP COLUMN legacy;\n",
        },
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    assert "legacy" in columns(db, "notes")
    run = app_repo.shiplane("rollback", "dev", "--restore-db")
    assert run.code == 0, run.stdout
    assert run.data["database"]["action"] == "restore"
    assert "legacy" not in columns(db, "notes")
    backups = app_repo.root / "dev" / "backups"
    manifests = list_backups(backups)
    assert len(manifests) >= 3  # two deploys' backups and the rollback's pre-restore one
    assert all(m.get("encrypted") == "age" for m in manifests), manifests
    assert strays(backups) == []


def test_backup_of_other_migrations_is_refused_unless_the_release_goes_back(
    app_repo: AppRepo,
) -> None:
    """Restoring a backup under a release whose code expects other migrations would serve
    errors: refused, naming `rollback --to R --restore-db`, which takes both back."""
    without_checks(app_repo.path / "shiplane.toml")
    assert app_repo.shiplane("deploy", "dev").code == 0
    made = app_repo.shiplane("backup", "dev")
    backup_id, release = made.data["backup"]["id"], made.data["backup"]["release"]
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit(
        "pinned",
        {
            "VERSION": "2.0.0\n",
            "migrations/003_pinned.sql": "ALTER TABLE notes ADD COLUMN pinned INTEGER;\n"
            "-- down\nALTER TABLE notes DROP COLUMN pinned;\n",
        },
    )
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    before = dump(db)

    refused = app_repo.shiplane("restore", "dev", backup_id, "--yes", "--discard-writes")
    assert refused.code == 6, refused.stdout
    error = refused.data["error"]
    assert "003_pinned" in error["message"] and "its code would fail" in error["message"]
    assert f"shiplane rollback dev --to {release} --restore-db" in error["next_action"]
    assert dump(db) == before  # nothing changed

    run = app_repo.shiplane("rollback", "dev", "--to", str(release), "--restore-db")
    assert run.code == 0, run.stdout
    assert run.data["database"]["action"] == "restore"
    assert "pinned" not in columns(db, "notes")
    version = httpx.get(app_repo.url("dev", "/api/version"), timeout=10).json()["version"]
    assert version == "1.0.0"
