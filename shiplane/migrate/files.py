"""Migration files: ``NNN_name.py`` with ``up(db)``/``down(db)``; ``NNN_name.sql`` with a
``-- down`` section."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from shiplane.errors import MigrationError

FILE_RE = re.compile(r"^(?P<version>\d{3,})_(?P<name>[A-Za-z0-9_]+)\.(?P<kind>py|sql)$")
DOWN_MARKER = re.compile(r"^\s*--\s*down\s*$", re.IGNORECASE | re.MULTILINE)
UP_MARKER = re.compile(r"^\s*--\s*up\s*$", re.IGNORECASE | re.MULTILINE)
SQL_ANNOTATION = re.compile(r"^\s*--\s*shiplane:\s*([a-z-]+)\s*$", re.IGNORECASE | re.MULTILINE)
# Annotations: "irreversible" (no working down: rollback restores the backup) and
# "expand-contract" (a destructive step deliberately done as the contract half).
PY_ANNOTATIONS = {"IRREVERSIBLE": "irreversible", "EXPAND_CONTRACT": "expand-contract"}

Action = Callable[[Any], None]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    checksum: str

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"

    @property
    def kind(self) -> str:
        return self.path.suffix.lstrip(".")

    def up_action(self) -> Action:
        return self._action("up")

    def down_action(self) -> Action:
        return self._action("down")

    @property
    def annotations(self) -> set[str]:
        if self.kind == "sql":
            return {a.lower() for a in SQL_ANNOTATION.findall(self.path.read_text())}
        module = self._module()
        return {name for attr, name in PY_ANNOTATIONS.items() if getattr(module, attr, False)}

    @property
    def irreversible(self) -> bool:
        return "irreversible" in self.annotations

    def up_source(self) -> str:
        """The text that runs on `up`: the SQL up section, or the source of def up()."""
        text = self.path.read_text()
        if self.kind == "sql":
            return split_sql(text)[0]
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            raise syntax_error(self.path, exc) from None
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "up":
                return ast.get_source_segment(text, node) or ""
        return ""

    def has_down(self) -> bool:
        if self.kind == "sql":
            return bool(split_sql(self.path.read_text())[1].strip())
        return callable(getattr(self._module(), "down", None))

    def statements(self, direction: str) -> list[str]:
        """SQL statements of a .sql migration (for dry runs); [] for .py."""
        if self.kind != "sql":
            return []
        up, down = split_sql(self.path.read_text())
        return split_statements(up if direction == "up" else down)

    def _action(self, direction: str) -> Action:
        if self.kind == "sql":
            statements = self.statements(direction)
            if direction == "down" and not statements:
                raise MigrationError(
                    f"{self.path.name} has no '-- down' section: it cannot be reverted",
                    step="migrate",
                    next_action="add a '-- down' section, or restore the pre-deploy backup",
                )

            def run_sql(db: Any) -> None:
                for statement in statements:
                    db.execute(statement)

            return run_sql
        func = getattr(self._module(), direction, None)
        if not callable(func):
            raise MigrationError(
                f"{self.path.name} defines no {direction}(db) function",
                step="migrate",
                next_action=f"add def {direction}(db): ... to {self.path.name}",
            )
        action: Action = func
        return action

    def _module(self) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"shiplane_migration_{self.label}", self.path)
        if spec is None or spec.loader is None:
            raise MigrationError(f"cannot load {self.path}", step="migrate")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            raise syntax_error(self.path, exc) from None
        except Exception as exc:
            raise MigrationError(
                f"{self.path.name}: importing it failed: {type(exc).__name__}: {exc}",
                step="migrate",
                next_action=f"fix {self.path.name} and commit it",
            ) from exc
        return module


def syntax_error(path: Path, exc: SyntaxError) -> MigrationError:
    return MigrationError(
        f"{path.name}:{exc.lineno}: syntax error: {exc.msg}",
        step="migrate",
        next_action=f"fix {path.name} and commit it",
    )


def split_sql(text: str) -> tuple[str, str]:
    parts = DOWN_MARKER.split(text, maxsplit=1)
    up = UP_MARKER.sub("", parts[0])
    return up, parts[1] if len(parts) > 1 else ""


def split_statements(sql: str) -> list[str]:
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if _meaningful(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _meaningful(buffer):
        statements.append(buffer.strip())
    return statements


def _meaningful(sql: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def discover(directory: Path) -> list[Migration]:
    if not directory.is_dir():
        return []
    found: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(("_", ".")) or path.suffix not in (".py", ".sql"):
            continue
        match = FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path}: migration files are named NNN_name.py or NNN_name.sql",
                step="migrate",
                next_action=f"rename {path.name}, e.g. 003_add_index.sql",
            )
        version = int(match.group("version"))
        if version in found:
            raise MigrationError(
                f"{path.name} and {found[version].path.name} share version {version}",
                step="migrate",
                next_action="give each migration its own number",
            )
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found[version] = Migration(version, match.group("name"), path, checksum)
    return [found[v] for v in sorted(found)]
