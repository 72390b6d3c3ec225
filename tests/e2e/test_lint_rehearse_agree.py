"""Issue 14, output that never misleads: `migrate ENV --lint` and `--rehearse` look at the
same thing (the candidate commit's migrations against the env's database) and say the same
``pending``; when nothing is pending, they say so instead of an empty list that reads as
"checked, all clear". The example app, a real git branch and a real SQLite database."""

from __future__ import annotations

from tests.support.app_repo import AppRepo

ADD_PINNED = (
    "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;\n"
    "-- down\nALTER TABLE notes DROP COLUMN pinned;\n"
)


def test_lint_and_rehearse_agree_on_what_is_pending(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    app_repo.git("checkout", "-q", "-b", "feature/pinned", "dev")
    app_repo.commit("add pinned", {"migrations/003_add_pinned.sql": ADD_PINNED})

    linted = app_repo.shiplane("migrate", "dev", "--lint")
    rehearsed = app_repo.shiplane("migrate", "dev", "--rehearse")
    assert linted.code == 0 and rehearsed.code == 0, linted.stdout + rehearsed.stdout
    assert linted.data["pending"] == rehearsed.data["pending"] == ["003_add_pinned"]
    assert rehearsed.data["rehearsal"]["pending"] == ["003_add_pinned"]
    assert linted.data["linted"] == 1
    assert "note" not in linted.data and "note" not in rehearsed.data
    # Linting and rehearsing touched nothing: the real database still lacks the column.
    status = app_repo.shiplane("migrate", "dev", "status")
    assert status.data["pending"] == [], status.stdout

    # What serves is what the branch holds: nothing to lint, and said so.
    app_repo.git("checkout", "-q", "dev")
    linted = app_repo.shiplane("migrate", "dev", "--lint")
    rehearsed = app_repo.shiplane("migrate", "dev", "--rehearse")
    assert linted.code == 0 and rehearsed.code == 0, linted.stdout + rehearsed.stdout
    assert linted.data["pending"] == rehearsed.data["pending"] == []
    assert linted.data["linted"] == 0 and linted.data["lint"] == []
    assert linted.data["note"] == "no pending migrations: nothing to lint"
    assert rehearsed.data["note"] == "no pending migrations: nothing to rehearse"
