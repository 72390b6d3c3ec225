"""Checks come from the commit being deployed (issue 15 item 4): a newer commit's schema check
for a column only it has does not apply when `deploy dev --ref OLD` deploys the older one."""

from __future__ import annotations

from tests.support.app_repo import AppRepo
from tests.support.sqlite_util import columns

COLOUR_MIGRATION = (
    "-- up\nALTER TABLE notes ADD COLUMN colour TEXT NOT NULL DEFAULT '';\n\n"
    "-- down\nALTER TABLE notes DROP COLUMN colour;\n"
)
COLOUR_CHECK = """
[[verify.check]]
name = "colour column"
kind = "schema"
tables = { notes = ["colour"] }
"""


def test_deploy_old_ref_runs_the_old_commits_checks(app_repo: AppRepo) -> None:
    app = app_repo
    app.git("checkout", "-q", "dev")
    old = app.git("rev-parse", "HEAD")
    config = app.path / "shiplane.toml"
    new = app.commit(
        "colour",
        {
            "migrations/003_colour.sql": COLOUR_MIGRATION,
            "shiplane.toml": config.read_text() + COLOUR_CHECK,
        },
    )
    db = app.root / "dev" / "shared" / "notes.db"

    run = app.shiplane("deploy", "dev", "--ref", old)
    assert run.code == 0, run.stdout + run.stderr
    assert "colour" not in columns(db, "notes")
    # The working tree's checks (the newer commit's) do fail against what OLD serves.
    verify = app.shiplane("verify", "dev")
    assert verify.code == 1
    assert [c["name"] for c in verify.data["error"]["failed_checks"]] == ["colour column"]

    run = app.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    assert "colour" in columns(db, "notes")
    steps = {s["name"]: s for s in run.data["steps"]}
    assert steps["migrate"]["detail"] == "applied 003_colour"
    assert app.remote_branch("dev") == new
