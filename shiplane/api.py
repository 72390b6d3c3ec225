"""The public operations. The CLI (and later the MCP server and dashboard) only call these."""

from shiplane.operations.database import backup, backups, restore
from shiplane.operations.deploy import deploy
from shiplane.operations.init import init
from shiplane.operations.inspect import history, logs, status
from shiplane.operations.migrations import migrate
from shiplane.operations.promote import approve, promote, reject
from shiplane.operations.recover import recover_stale
from shiplane.operations.rollback import rollback
from shiplane.operations.verify import show_report, verify

__all__ = [
    "approve",
    "backup",
    "backups",
    "deploy",
    "history",
    "init",
    "logs",
    "migrate",
    "promote",
    "recover_stale",
    "reject",
    "restore",
    "rollback",
    "show_report",
    "status",
    "verify",
]
