"""Notes, the Flask way: an app factory, Flask-SQLAlchemy models, Flask-Migrate migrations.

DATABASE_URL picks the database (sqlite:///... or postgresql://...). Served by gunicorn:
    gunicorn "app:create_app()"
Migrations run as `flask db upgrade` (FLASK_APP is found: this file has create_app)."""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
migrate = Migrate()


class Note(db.Model):  # type: ignore[name-defined]
    __tablename__ = "notes"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.Text, nullable=False)
    body = db.Column(db.Text, nullable=False, server_default="")
    pinned = db.Column(db.Boolean, nullable=False, server_default=db.false())

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "body": self.body, "pinned": self.pinned}


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "sqlite:///notes.db")
    # SQLAlchemy picks psycopg 3 only when told; shiplane hands out plain postgresql:// URLs.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url()
    db.init_app(app)
    migrate.init_app(app, db)

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        db.session.execute(db.text("SELECT 1"))
        return {"status": "ok"}, 200

    @app.get("/api/notes")
    def list_notes() -> object:
        notes = db.session.scalars(db.select(Note).order_by(Note.id)).all()
        return jsonify(notes=[n.to_dict() for n in notes])

    @app.post("/api/notes")
    def create_note() -> tuple[object, int]:
        payload = request.get_json(silent=True) or {}
        title = str(payload.get("title", "")).strip()
        if not title:
            return jsonify(error="title is required"), 400
        note = Note(title=title, body=str(payload.get("body", "")))
        note.pinned = bool(payload.get("pinned", False))
        db.session.add(note)
        db.session.commit()
        return jsonify(note.to_dict()), 201

    @app.get("/api/notes/<int:note_id>")
    def get_note(note_id: int) -> tuple[object, int]:
        note = db.session.get(Note, note_id)
        if note is None:
            return jsonify(error="not found"), 404
        return jsonify(note.to_dict()), 200

    return app
