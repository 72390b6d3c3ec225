"""Rendering results: JSON on stdout for agents, Rich text for people; progress on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

# Rich: the text people read (Typer's help uses it too); JSON output needs only json.
from rich.console import Console
from rich.table import Table

from shiplane.results import Result

stderr = Console(stderr=True)
stdout = Console()

ICONS = {"done": "[green]✓[/]", "failed": "[red]✗[/]", "started": "…", "undoing": "[yellow]↶[/]"}


def wants_json(flag: bool) -> bool:
    return flag or not sys.stdout.isatty()


def progress(step: str, status: str) -> None:
    if stderr.is_terminal and status != "started":
        stderr.print(f"  {ICONS.get(status, status)} {step}")


def emit(result: Result | dict[str, Any], as_json: bool) -> None:
    payload = result.to_dict() if isinstance(result, Result) else result
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
        sys.stdout.flush()
        return
    _human(payload)


def _human(payload: dict[str, Any]) -> None:
    if payload.get("steps"):
        table = Table(title=f"{payload['command']} {payload.get('env') or ''}".strip())
        for column in ("step", "status", "ms", "detail"):
            table.add_column(column)
        for step in payload["steps"]:
            table.add_row(
                step["name"], step["status"], str(step["duration_ms"]), step.get("detail") or ""
            )
        stdout.print(table)
    verification = payload.get("verification")
    if isinstance(verification, dict):
        table = Table(title=f"verification {verification['id']} ({verification['sha'][:7]})")
        for column in ("check", "kind", "group", "status", "ms", "message"):
            table.add_column(column)
        colours = {"passed": "green", "failed": "red", "skipped": "yellow"}
        for check in verification["results"]:
            status = f"[{colours[check['status']]}]{check['status']}[/]"
            table.add_row(
                check["name"],
                check["kind"],
                check["group"],
                status,
                str(check["duration_ms"]),
                check["message"],
            )
        stdout.print(table)
    hidden = ("steps", "log", "output")
    rest = {k: v for k, v in payload.items() if k not in hidden and v not in (None, [], {})}
    if payload.get("command") == "logs" and payload.get("log"):
        stdout.print(payload["log"], markup=False, highlight=False)
    output = payload.get("output")
    if payload.get("command") == "run" and isinstance(output, dict):
        # A person reads a one-off command's output as it printed it, not as a JSON string.
        stdout.print(output.get("stdout", ""), markup=False, highlight=False, end="")
        stderr.print(output.get("stderr", ""), markup=False, highlight=False, end="")
    stdout.print_json(json.dumps(rest, default=str))
    if payload["ok"]:
        stdout.print("[green]ok[/]")
    else:
        error = payload.get("error") or {}
        stdout.print(f"[red]failed[/] at {error.get('step')}: {error.get('message')}", markup=True)
        if error.get("next_action"):
            stdout.print(f"next: {error['next_action']}")
