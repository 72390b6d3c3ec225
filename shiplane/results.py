"""The typed result every operation returns; the CLI renders it as JSON or Rich text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shiplane.config.redact import mask_url_passwords
from shiplane.errors import ShiplaneError


@dataclass
class StepResult:
    name: str
    status: str
    duration_ms: int
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "duration_ms": self.duration_ms,
        }
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class Result:
    command: str
    ok: bool = True
    env: str | None = None
    deployment_id: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    error: dict[str, Any] | None = None
    exit_code: int = 0
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def fail(self, error: ShiplaneError, undone: list[str] | None = None) -> Result:
        """Record ``error`` as this result's outcome: its exit code, step, message, next action
        and what was undone. The one place an error becomes a result."""
        self.ok = False
        self.exit_code = error.exit_code
        self.error = {**error.to_dict(), "undone": list(undone or [])}
        # Whatever raised it, a URL in an error loses its password (a last net: the env's
        # Redactor masks known secrets where the operation has one).
        for key in ("message", "next_action"):
            if isinstance(self.error.get(key), str):
                self.error[key] = mask_url_passwords(self.error[key])
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "command": self.command,
            "env": self.env,
            "deployment_id": self.deployment_id,
            "exit_code": self.exit_code,
            "steps": [s.to_dict() for s in self.steps],
            "error": self.error,
        }
        if self.warnings:
            out["warnings"] = self.warnings
        out.update(self.data)
        return out
