"""The published JSON Schema of every command's result (``shiplane schema``): the envelope an
agent can rely on. Commands add their own keys beside it (``data``), which the schema allows
but does not describe; the envelope's keys, types and exit codes it pins down."""

from __future__ import annotations

from typing import Any

from shiplane.errors import EXIT_CODES

STEP_STATUSES = ("started", "done", "failed", "undone", "undo_failed", "skipped")

_STEP = {
    "type": "object",
    "required": ["name", "status", "duration_ms"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "status": {"enum": list(STEP_STATUSES)},
        "duration_ms": {"type": "integer", "minimum": 0},
        "detail": {"type": "string"},
    },
}

_ERROR = {
    "type": "object",
    "required": ["step", "message", "next_action", "undone"],
    "properties": {
        "step": {"type": ["string", "null"]},
        "message": {"type": "string", "minLength": 1},
        "next_action": {"type": ["string", "null"]},
        "undone": {"type": "array", "items": {"type": "string"}},
    },
}


def result_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://shiplane.dev/schema/result.json",
        "title": "shiplane command result",
        "description": "What every shiplane command prints on stdout with --json (or when"
        " stdout is not a terminal); the process exits with exit_code.",
        "type": "object",
        "required": ["ok", "command", "env", "deployment_id", "exit_code", "steps", "error"],
        "properties": {
            "ok": {"type": "boolean"},
            "command": {"type": "string", "minLength": 1},
            "env": {"type": ["string", "null"]},
            "deployment_id": {"type": ["string", "null"]},
            "exit_code": {
                "enum": sorted(EXIT_CODES),
                "description": "; ".join(f"{k}: {v}" for k, v in sorted(EXIT_CODES.items())),
            },
            "steps": {"type": "array", "items": _STEP},
            "error": {"oneOf": [{"type": "null"}, _ERROR]},
            "warnings": {"type": "array", "items": {"type": "string"}},
        },
        # ok, exit code 0 and no error go together: an agent may test any one of them.
        "oneOf": [
            {
                "properties": {
                    "ok": {"const": True},
                    "exit_code": {"const": 0},
                    "error": {"type": "null"},
                }
            },
            {
                "properties": {
                    "ok": {"const": False},
                    "exit_code": {"not": {"const": 0}},
                    "error": {"type": "object"},
                }
            },
        ],
    }
