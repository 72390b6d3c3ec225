"""Shared fixtures (the example app in a real git repository, a PostgreSQL server), the e2e
marker for tests/e2e and tests/faults, and the fault table printed at the end of the run.

Helpers live in tests/support; tests import them from there, never from a conftest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.pgserver import PgServer, pg_server
from tests.support.app_repo import AppRepo, free_port, make_repo, wait_no_children

TESTS = Path(__file__).resolve().parent
E2E_DIRS = (TESTS / "e2e", TESTS / "faults")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e and tests/faults is marked e2e (before `-m` selects), so
    `-m e2e` and `-m 'not e2e'` split the suite by directory; tests/unit stays unmarked."""
    for item in items:
        if any(item.path.is_relative_to(directory) for directory in E2E_DIRS):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    with pg_server(free_port()) as server:
        yield server


@pytest.fixture
def app_repo(tmp_path: Path) -> Iterator[AppRepo]:
    app = make_repo(tmp_path)
    try:
        yield app
    finally:
        app.stop_server()
        # Everything this test started runs under tmp_path: instances in releases, servers in
        # the repositories they were started from.
        wait_no_children(tmp_path)


FAULT_CELLS: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == "fault_cell" and report.when == "call":
            FAULT_CELLS[str(value)] = "held" if report.passed else "NOT HELD"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_CELLS:
        terminalreporter.write_sep("-", "fault injection: step x fault")
        for cell, verdict in sorted(FAULT_CELLS.items()):
            terminalreporter.write_line(f"{cell:40} {verdict}")
