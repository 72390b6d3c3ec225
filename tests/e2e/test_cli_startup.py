"""CLI startup: `--help`, `status` and `history` run without importing what they do not use
(database drivers, the verification machinery, the pipeline, migrations, encryption). A real
`python -c` subprocess runs the CLI's entry point, then reports which modules it imported."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.app_repo import AppRepo

# Runs the CLI as `shiplane ARGS...` would, then prints (last line) the loaded modules.
PROBE = """
import json, sys
from shiplane.cli.main import run
sys.argv = ["shiplane", *sys.argv[1:]]
try:
    run()
except SystemExit:
    pass
print(json.dumps(list(sys.modules)))
"""

# Never for any of the three commands.
NEVER = (
    "psycopg",
    "alembic",
    "sqlalchemy",
    "pyrage",
    "jsonschema",
    "shiplane.verify",
    "shiplane.pipeline",
    "shiplane.migrate",
    "shiplane.backup",
    "shiplane.server",
    "shiplane.frontdoor",
)
# Not for `--help` either: it talks to no server and reads no config.
NOT_FOR_HELP = (*NEVER, "httpx", "pydantic", "shiplane.config.models", "shiplane.api")


def _loaded(
    args: list[str], cwd: str | None = None, env: dict | None = None
) -> tuple[list[str], str]:
    """The modules the CLI loaded, and what it printed before them."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    *printed, modules = proc.stdout.strip().splitlines()
    return list(json.loads(modules)), "\n".join(printed)


def _offending(loaded: list[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == b or m.startswith(b + ".") for b in banned))


def test_help_imports_no_heavy_module() -> None:
    loaded, printed = _loaded(["--help"])
    assert "deploy" in printed and "rollback" in printed  # the help was shown
    assert _offending(loaded, NOT_FOR_HELP) == []


def test_status_and_history_import_no_driver_pipeline_or_checks(app_repo: AppRepo) -> None:
    assert app_repo.shiplane("deploy", "dev").code == 0
    for args in (["status", "dev", "--json"], ["history", "--json"]):
        loaded, printed = _loaded(args, cwd=str(app_repo.path), env=app_repo.env)
        assert json.loads(printed.splitlines()[-1])["ok"] is True, printed  # the server answered
        assert _offending(loaded, NEVER) == [], args
