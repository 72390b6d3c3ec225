"""The schema-change sequence of the issue-12 matrix, run on an example app with a writer
POSTing through dev's front door the whole time:

- (optionally) deploy dev -> verify -> promote prod;
- an additive migration (a nullable `colour` the new code writes), then rollback: the code goes
  back, the schema and the writes to the new column stay;
- a non-additive one (`body` renamed `content`, a new `rating`), then rollback: refused
  (exit 6) while `rating` holds a write; once it is empty, `down` inside the hold.

Every acknowledged write is still there, no request failed during a rollback, and the schema
is the one the JSON names."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.app_db import AppDb
from tests.support.app_repo import AppRepo
from tests.support.writer import Writer, writing


@dataclass
class Case:
    """One example app and the two schema changes the sequence deploys and rolls back."""

    app: AppRepo
    db: AppDb
    table: str
    additive: Callable[[AppRepo], dict[str, str]]
    non_additive: Callable[[AppRepo], dict[str, str]]
    reverted: list[str]  # what the non-additive rollback's `down` reverts
    promote: bool = True  # start with deploy dev -> verify -> promote prod


def edit(app: AppRepo, name: str, changes: dict[str, str]) -> str:
    text = (app.path / name).read_text()
    for old, new in changes.items():
        assert old in text, (name, old)
        text = text.replace(old, new)
    return text


def settle(writer: Writer, writes: int = 5) -> None:
    """Let the writer land a few more acknowledged writes on what serves now."""
    target = writer.mark()[0] + writes
    deadline = time.monotonic() + 20
    while writer.mark()[0] < target and time.monotonic() < deadline:
        time.sleep(0.05)


def rollback(app: AppRepo, writer: Writer, *args: str) -> dict[str, Any]:
    """`shiplane rollback dev` while the writer writes; not one of its requests may fail."""
    before = writer.mark()
    run = app.shiplane("rollback", "dev", *args)
    settle(writer)
    # A request held past the hold's budget (30 s) is answered 503: say how long it held.
    held = (run.data.get("database") or {}).get("hold_seconds")
    assert writer.mark()[1] == before[1], (writer.failures[before[1] :][:5], f"held {held}s")
    return {"code": run.code, **run.data, "stdout": run.stdout}


def run_sequence(case: Case) -> None:
    app, db, table = case.app, case.db, case.table
    run = app.shiplane("deploy", "dev")
    assert run.code == 0, run.stdout + run.stderr
    if case.promote:
        assert app.shiplane("verify", "dev").code == 0
        run = app.shiplane("promote", "prod")
        assert run.code == 0, run.stdout + run.stderr
        assert httpx.get(app.url("prod", "/api/notes"), timeout=5).status_code == 200

    app.commit("colour", case.additive(app))
    payload = {"title": "w", "colour": "teal"}
    with writing(app.url("dev", ""), lambda n: {**payload, "title": f"w{n}"}) as writer:
        settle(writer)
        run = app.shiplane("deploy", "dev")
        assert run.code == 0, run.stdout + run.stderr
        settle(writer)
        result = rollback(app, writer)
        assert result["code"] == 0, result["stdout"]
        # Additive: the old release passes its checks on the new schema; nothing reverted.
        assert result["database"]["action"] == "kept" and result["database"]["reverted"] == []
        assert "colour" in db.columns(table)
        assert db.scalar(f"SELECT count(*) FROM {table} WHERE colour = 'teal'") > 0

        app.commit("content, rating", case.non_additive(app))
        # (the additive commit was rolled back: it is in this deploy on purpose)
        run = app.shiplane("deploy", "dev", "--include-rolled-back")
        assert run.code == 0, run.stdout + run.stderr
        assert {"content", "rating"} <= db.columns(table)
        settle(writer)
        # The old code reads `body`: it fails on this schema, so `down` must run. `rating`
        # holds a write since the migration: refused, nothing changed.
        db.execute(f"UPDATE {table} SET rating = 5 WHERE id = (SELECT max(id) FROM {table})")
        result = rollback(app, writer)
        assert result["code"] == 6, result["stdout"]
        assert f"{table}.rating (1 values)" in result["error"]["message"], result["stdout"]
        assert "--discard-writes" in result["error"]["next_action"]
        assert {"content", "rating"} <= db.columns(table)
        # Once `rating` is empty again, `down` runs inside the hold and drops nothing written.
        db.execute(f"UPDATE {table} SET rating = NULL")
        result = rollback(app, writer)
        assert result["code"] == 0, result["stdout"]
        database = result["database"]
        assert database["action"] == "down" and database["reverted"] == case.reverted, database
        assert database["old_code_fails"] and database["hold_seconds"] is not None
        assert "content" not in db.columns(table) and "body" in db.columns(table)
        assert "rating" not in db.columns(table) and "colour" in db.columns(table)
    assert db.missing(writer.acked, table) == set()
    assert len(writer.acked) > 20
