"""notes: a small real web app that shiplane deploys in its demo and end-to-end tests."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from flask import Flask, abort, g, jsonify, render_template, request

app = Flask(__name__)
VERSION = (Path(__file__).parent / "VERSION").read_text().strip()


def database_path() -> str:
    url = os.environ.get("DATABASE_URL", "sqlite:///notes.db")
    return url.removeprefix("sqlite:///")


def db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(database_path(), timeout=30)
        g.db.row_factory = sqlite3.Row
    return g.db


@app.teardown_appcontext
def close_db(_exc: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def note_dict(row: sqlite3.Row) -> dict[str, object]:
    return {"id": row["id"], "title": row["title"], "body": row["body"], "tags": row["tags"]}


@app.get("/healthz")
def healthz():
    db().execute("SELECT 1 FROM notes LIMIT 1").fetchall()
    return jsonify(ok=True, version=VERSION)


@app.get("/")
def index():
    notes = [note_dict(r) for r in db().execute("SELECT * FROM notes ORDER BY id DESC")]
    return render_template("index.html", notes=notes, version=VERSION,
                           env=os.environ.get("SHIPLANE_ENV", "local"))


@app.get("/api/notes")
def list_notes():
    rows = db().execute("SELECT * FROM notes ORDER BY id")
    return jsonify(notes=[note_dict(r) for r in rows], version=VERSION)


@app.post("/api/notes")
def create_note():
    payload = request.get_json(silent=True) or {}
    title = str(payload.get("title", "")).strip()
    if not title:
        return jsonify(error="title is required"), 400
    conn = db()
    cursor = conn.execute(
        "INSERT INTO notes (title, body, tags) VALUES (?, ?, ?)",
        (title, str(payload.get("body", "")), str(payload.get("tags", ""))),
    )
    conn.commit()
    row = conn.execute("SELECT * FROM notes WHERE id = ?", (cursor.lastrowid,)).fetchone()
    return jsonify(note_dict(row)), 201


@app.get("/api/notes/<int:note_id>")
def get_note(note_id: int):
    row = db().execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
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
