"""Data safety through the real CLI: drift, rehearsal, irreversible migrations, the lint gate."""

from __future__ import annotations

import sqlite3

from tests.support.app_repo import AppRepo
from tests.support.sqlite_util import columns

ADD_LEGACY = (
    "ALTER TABLE notes ADD COLUMN legacy TEXT;\n-- down\nALTER TABLE notes DROP COLUMN legacy;\n"
)


def on_dev(app_repo: AppRepo, message: str, files: dict[str, str]) -> str:
    app_repo.git("checkout", "-q", "dev")
    return app_repo.commit(message, files)


def test_drift_is_shown_and_refused_until_accepted(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    status = app_repo.shiplane("status", "dev").data["envs"]["dev"]["schema"]
    assert status["drift"] is False and status["fingerprint"] == status["recorded"]
    db = app_repo.root / "dev" / "shared" / "notes.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE hand_made (x INTEGER)")  # someone changed the schema by hand
    conn.commit()
    conn.close()
    assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["schema"]["drift"] is True

    on_dev(app_repo, "add legacy", {"migrations/003_legacy.sql": ADD_LEGACY})
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 6 and run.data["error"]["step"] == "guard"
    assert "changed outside shiplane" in run.data["error"]["message"]
    assert "--accept-drift" in run.data["error"]["next_action"]
    assert "legacy" not in columns(db, "notes")  # nothing migrated

    run = app_repo.shiplane("deploy", "dev", "--accept-drift")
    assert run.code == 0, run.stdout
    assert "legacy" in columns(db, "notes")
    assert app_repo.shiplane("status", "dev").data["envs"]["dev"]["schema"]["drift"] is False


def test_rehearsal_catches_a_broken_down(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    broken_down = (
        "ALTER TABLE notes ADD COLUMN legacy TEXT;\nCREATE INDEX notes_legacy ON notes(legacy);\n"
        "-- down\nDROP INDEX notes_legacy;\n"  # forgets the column
    )
    on_dev(app_repo, "broken down", {"migrations/003_legacy.sql": broken_down})
    rehearsal = app_repo.shiplane("migrate", "dev", "--rehearse")
    assert rehearsal.code == 3
    assert "does not restore the schema" in rehearsal.data["error"]["message"]

    config = app_repo.path / "shiplane.toml"
    config.write_text(
        config.read_text().replace("auto_merge = true", "auto_merge = true\nrehearse = true")
    )
    db = app_repo.root / "dev" / "shared" / "notes.db"
    run = app_repo.shiplane("deploy", "dev")
    assert run.code == 3 and run.data["error"]["step"] == "guard"
    assert "rehearsal on a copy" in run.data["error"]["message"]
    assert "legacy" not in columns(db, "notes")  # the real database was never touched


def test_irreversible_additive_migration_keeps_its_schema_on_rollback(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    one_way = "-- shiplane: irreversible\nALTER TABLE notes ADD COLUMN legacy TEXT;\n"
    on_dev(app_repo, "one way", {"VERSION": "2.0.0\n", "migrations/003_legacy.sql": one_way})
    rehearsal = app_repo.shiplane("migrate", "dev", "--rehearse")
    assert rehearsal.code == 0 and rehearsal.data["rehearsal"]["irreversible"] == ["003_legacy"]
    assert app_repo.shiplane("deploy", "dev").code == 0
    db = app_repo.root / "dev" / "shared" / "notes.db"
    assert "legacy" in columns(db, "notes")
    run = app_repo.shiplane("rollback", "dev")
    assert run.code == 0, run.stdout
    # The old code runs on the new schema (an added column): code goes back, the schema stays.
    assert run.data["database"]["action"] == "kept"
    assert "legacy" in columns(db, "notes")


def test_lint_blocks_an_unannotated_column_drop_before_prod(app_repo: AppRepo) -> None:
    app_repo.git("checkout", "-q", "dev")
    app_repo.commit(
        "expand then contract",
        {
            "migrations/003_legacy.sql": ADD_LEGACY,
            "migrations/004_drop_legacy.sql": "ALTER TABLE notes DROP COLUMN legacy;\n-- down\n"
            "ALTER TABLE notes ADD COLUMN legacy TEXT;\n",
        },
    )
    lint_run = app_repo.shiplane("migrate", "dev", "--lint")
    assert lint_run.code == 0
    rules = {(f["migration"], f["rule"]) for f in lint_run.data["lint"]}
    assert ("004_drop_legacy", "drop-column") in rules
    assert app_repo.shiplane("deploy", "dev").code == 0  # dev is not gated: a warning only
    assert app_repo.shiplane("verify", "dev").code == 0
    run = app_repo.shiplane("promote", "prod")
    assert run.code == 6 and run.data["error"]["step"] == "guard"
    assert "004_drop_legacy: drops a column" in run.data["error"]["message"]
    assert "expand-contract" in run.data["error"]["next_action"]
    assert not (app_repo.root / "prod" / "shared" / "notes.db").exists()  # prod untouched
