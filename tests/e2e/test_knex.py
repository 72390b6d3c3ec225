"""examples/knex_notes (node:http, knex, pg) deployed with engine = "knex" on PostgreSQL: its
three migrations apply through `npx knex migrate:latest`, then the matrix's schema sequence
(tests/support/matrix.py) with a writer through the front door: an additive migration rolled
back with the schema kept, a non-additive one rolled back by `migrate:down` under the hold, or
refused while its new column holds a write.

node_modules comes from `npm ci` of the committed package-lock.json, cached by the lock's hash
(tests/support/examples.py); each release links it instead of installing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pgserver import PgServer
from tests.support.app_db import use_postgres
from tests.support.app_repo import AppRepo, wait_no_children
from tests.support.examples import ROOT, example_node_modules, make_example_repo
from tests.support.matrix import Case, edit, run_sequence

# One sequence of six to eight shiplane commands, each starting the framework's CLI several times
# (instead of one server per scenario): longer than the suite's 300 s guard on a busy machine.
pytestmark = pytest.mark.timeout(600)

EXAMPLE = ROOT / "examples" / "knex_notes"
COLOUR = """exports.up = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.text("colour");
  });

exports.down = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.dropColumn("colour");
  });
"""
CONTENT = """exports.up = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.renameColumn("body", "content");
    table.integer("rating");
  });

exports.down = (knex) =>
  knex.schema.alterTable("notes", (table) => {
    table.dropColumn("rating");
    table.renameColumn("content", "body");
  });
"""
INSERT = 'body: String(payload.body || ""),'


def additive(app: AppRepo) -> dict[str, str]:
    server = edit(app, "server.js", {INSERT: f"{INSERT} colour: payload.colour || null,"})
    return {"migrations/20260101000004_add_colour.js": COLOUR, "server.js": server}


def non_additive(app: AppRepo) -> dict[str, str]:
    server = edit(
        app,
        "server.js",
        {
            '"body", "tags"]': '"content as body", "tags"]',
            INSERT: 'content: String(payload.body || ""),',
        },
    )
    return {"migrations/20260101000005_rename_body.js": CONTENT, "server.js": server}


@pytest.fixture
def knex_app(tmp_path: Path, postgres: PgServer) -> Iterator[Case]:
    node_modules = example_node_modules(EXAMPLE)
    app = make_example_repo(tmp_path, "knex_notes", None)
    config = app.path / "shiplane.toml"
    dbs = use_postgres(config, postgres, envs=("dev",))
    config.write_text(config.read_text().replace("build = []", f'build = ["ln -s {node_modules}"]'))
    app.commit("postgresql, cached node_modules")
    try:
        yield Case(
            app,
            dbs["dev"],
            "notes",
            additive,
            non_additive,
            ["20260101000005_rename_body.js"],
            promote=False,
        )
    finally:
        app.stop_server()
        wait_no_children(tmp_path)


def test_knex_app_migrates_and_rolls_back_under_the_hold(knex_app: Case) -> None:
    app, db = knex_app.app, knex_app.db
    run_sequence(knex_app)
    applied = app.shiplane("status", "dev").data["envs"]["dev"]["migrations"]["applied"]
    assert applied[:3] == [
        "20260101000001_create_notes.js",
        "20260101000002_add_body.js",
        "20260101000003_add_tags.js",
    ]
    assert {"knex_migrations", "notes"} <= db.tables()
