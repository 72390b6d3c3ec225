"""Check values (issue 15 item 5): ${uuid}/${random}/${timestamp} make a create check unique on
every run, the request and its expectations share them, and a failed deploy's JSON names each
failed check with its group and reason."""

from __future__ import annotations

import re
import sqlite3

from tests.support.app_repo import AppRepo

UNIQUE_CHECK = """
[[verify.check]]
name = "unique note"
kind = "http"
method = "POST"
path = "/api/notes"
headers = { X-Request-Id = "${uuid}" }
json = { title = "n-${uuid}-${random}-${timestamp}" }
status = 201
expect_json = { title = "n-${uuid}-${random}-${timestamp}" }
"""

TEAPOT_CHECK = """
[[verify.check]]
name = "teapot"
kind = "http"
group = "api"
path = "/api/notes"
status = 418
"""


def unique_titles(app: AppRepo) -> list[str]:
    conn = sqlite3.connect(app.root / "dev" / "shared" / "notes.db")
    try:
        rows = conn.execute("SELECT title FROM notes WHERE title LIKE 'n-%' ORDER BY id").fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


def test_generated_values_and_failed_checks_in_the_json(app_repo: AppRepo) -> None:
    app = app_repo
    config = app.path / "shiplane.toml"
    app.commit("unique check", {"shiplane.toml": config.read_text() + UNIQUE_CHECK})
    run = app.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    verify = app.shiplane("verify", "dev")
    assert verify.code == 0, verify.stdout
    titles = unique_titles(app)
    # One note from the deploy's candidate run, one from verify: both passed, both differ.
    assert len(titles) == 2 and titles[0] != titles[1], titles
    pattern = r"n-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-\d+-\d{10}"
    assert all(re.fullmatch(pattern, t) for t in titles), titles

    app.commit("teapot", {"shiplane.toml": config.read_text() + TEAPOT_CHECK})
    run = app.shiplane("deploy", "dev")
    assert run.code == 1, run.stdout
    assert run.data["error"]["failed_checks"] == [
        {"name": "teapot", "group": "api", "message": "status 200, expected 418"}
    ]
    verify = app.shiplane("verify", "dev")
    assert verify.code == 1
    assert [c["name"] for c in verify.data["error"]["failed_checks"]] == ["teapot"]
