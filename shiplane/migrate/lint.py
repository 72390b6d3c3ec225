"""Migration risk lint: statements that can break the version still serving, or lose data.

Such a migration must be split expand/contract and its destructive half annotated
(``-- shiplane: expand-contract`` in SQL, ``EXPAND_CONTRACT = True`` in Python) before it may
reach a gated environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shiplane.databases import Database
from shiplane.migrate.base import MigrationSource

RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("drop-table", re.compile(r"\bDROP\s+TABLE\b", re.I), "drops a table"),
    ("drop-column", re.compile(r"\bDROP\s+COLUMN\b", re.I), "drops a column"),
    ("rename", re.compile(r"\bRENAME\s+(COLUMN\s+|TO\b)", re.I), "renames a table or column"),
    (
        "type-change",
        re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I),
        "changes a column type",
    ),
    (
        "non-transactional",
        re.compile(r"\b(CONCURRENTLY|VACUUM)\b", re.I),
        "cannot run inside a transaction",
    ),
]
NOT_NULL_ADD = re.compile(
    r"ALTER\s+TABLE\s+[\"`]?(\w+)[\"`]?\s+ADD\s+(?:COLUMN\s+)?[^;]*?\bNOT\s+NULL\b(?P<rest>[^;]*)",
    re.I,
)


@dataclass(frozen=True)
class Finding:
    migration: str
    rule: str
    message: str
    annotated: bool

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def lint(migration: MigrationSource, database: Database | None = None) -> list[Finding]:
    """Only for engines whose capabilities include lint: their up_source() is readable."""
    source = migration.up_source()
    annotated = "expand-contract" in migration.annotations
    findings = [
        Finding(migration.label, rule, message, annotated)
        for rule, pattern, message in RULES
        if pattern.search(source)
    ]
    for match in NOT_NULL_ADD.finditer(source):
        statement = match.group(0)
        if "DEFAULT" in statement.upper():
            continue
        table = match.group(1)
        if database is not None and database.exists() and database.has_rows(table):
            findings.append(
                Finding(
                    migration.label,
                    "not-null-without-default",
                    f"adds a NOT NULL column without a default to {table}, which has rows",
                    annotated,
                )
            )
    return findings


def blocking(findings: list[Finding]) -> list[Finding]:
    """What stops a migration from reaching a gated environment."""
    return [f for f in findings if not f.annotated]
