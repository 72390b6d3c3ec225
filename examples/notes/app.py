"""notes: a small real web app that shiplane deploys in its demo and end-to-end tests."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, jsonify, render_template, request

app = Flask(__name__)
VERSION = (Path(__file__).parent / "VERSION").read_text().strip()


def database_url() -> str:
    return os.environ.get("DATABASE_URL", "sqlite:///notes.db")


def db() -> Any:
    """One connection per request: SQLite by default, PostgreSQL (psycopg) for a postgresql://
    URL. Both take ``conn.execute(sql, params)`` and give rows readable by column name."""
    if "db" not in g:
        url = database_url()
        if url.startswith(("postgresql://", "postgres://")):
            import psycopg
            from psycopg.rows import dict_row

            g.db = psycopg.connect(url, row_factory=dict_row)
        else:
            g.db = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
            g.db.row_factory = sqlite3.Row
    return g.db


def query(sql: str, params: tuple[Any, ...] = ()) -> Any:
    """``sql`` with ``?`` placeholders, on either database (psycopg's are ``%s``)."""
    conn = db()
    if not isinstance(conn, sqlite3.Connection):
        sql = sql.replace("?", "%s")
    return conn.execute(sql, params)


def insert(sql: str, params: tuple[Any, ...]) -> Any:
    """Insert and commit; the new row comes back through RETURNING (SQLite 3.35+ and
    PostgreSQL alike), read in full before the commit."""
    row = query(sql + " RETURNING *", params).fetchall()[0]
    db().commit()
    return row


@app.teardown_appcontext
def close_db(_exc: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def note_dict(row: Any) -> dict[str, object]:
    return {"id": row["id"], "title": row["title"], "body": row["body"], "tags": row["tags"]}


@app.get("/healthz")
def healthz():
    query("SELECT 1 FROM notes LIMIT 1").fetchall()
    return jsonify(ok=True, version=VERSION)


@app.get("/")
def index():
    notes = [note_dict(r) for r in query("SELECT * FROM notes ORDER BY id DESC")]
    return render_template("index.html", notes=notes, version=VERSION,
                           env=os.environ.get("SHIPLANE_ENV", "local"))


@app.get("/api/notes")
def list_notes():
    rows = query("SELECT * FROM notes ORDER BY id")
    return jsonify(notes=[note_dict(r) for r in rows], version=VERSION)


@app.post("/api/notes")
def create_note():
    payload = request.get_json(silent=True) or {}
    title = str(payload.get("title", "")).strip()
    if not title:
        return jsonify(error="title is required"), 400
    row = insert(
        "INSERT INTO notes (title, body, tags) VALUES (?, ?, ?)",
        (title, str(payload.get("body", "")), str(payload.get("tags", ""))),
    )
    return jsonify(note_dict(row)), 201


@app.get("/api/notes/<int:note_id>")
def get_note(note_id: int):
    row = query("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        abort(404)
    return jsonify(note_dict(row))


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "notes", "version": VERSION},
    "paths": {
        "/healthz": {"get": {"responses": {"200": {"description": "healthy", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
        "/api/notes": {
            "get": {"responses": {"200": {"description": "all notes", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/NoteList"}}}}}},
            "post": {"responses": {"201": {"description": "created", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}}}},
        },
        "/api/notes/{note_id}": {"get": {
            "parameters": [{"name": "note_id", "in": "path", "required": True,
                            "schema": {"type": "integer", "example": 1}}],
            "responses": {"200": {"description": "one note", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}},
                          "404": {"description": "no such note"}},
        }},
        "/api/version": {"get": {"responses": {"200": {"description": "version", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Version"}}}}}}},
    },
    "components": {"schemas": {
        "Health": {"type": "object", "required": ["ok"], "properties": {
            "ok": {"type": "boolean"}, "version": {"type": "string"}}},
        "Note": {"type": "object", "required": ["id", "title", "body", "tags"], "properties": {
            "id": {"type": "integer"}, "title": {"type": "string"},
            "body": {"type": "string"}, "tags": {"type": "string"}}},
        "NoteList": {"type": "object", "required": ["notes"], "properties": {
            "notes": {"type": "array", "items": {"$ref": "#/components/schemas/Note"}},
            "version": {"type": "string"}}},
        "Version": {"type": "object", "required": ["version"], "properties": {
            "version": {"type": "string"}, "sha": {"type": ["string", "null"]}}},
    }},
}


@app.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)


@app.get("/api/version")
def version():
    return jsonify(version=VERSION, sha=os.environ.get("SHIPLANE_SHA"))


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "5000")))
