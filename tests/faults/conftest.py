"""Fault injection: each report is tagged with its step x fault cell, and tests/conftest.py
prints the table at the end of the run (every cell must say "held").

The harness itself (client loop, database snapshots) is in tests/support/faults.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Tag the report with the test's step x fault cell (read by tests/conftest.py, which
    prints the table; with xdist the reports travel to the controller with their tags)."""
    outcome = yield
    report = outcome.get_result()
    cell = getattr(item, "fault_cell", None)
    if cell and report.when == "call":
        report.user_properties.append(("fault_cell", cell))
