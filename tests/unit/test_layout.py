"""Every test module sits in one tier: `pytest tests/unit` and `-m 'not e2e'` select the same
tests, and `-m e2e` selects tests/e2e and tests/faults (marked by directory in tests/conftest.py).
Helpers go in tests/support, which holds no tests."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TIERS = {"unit", "e2e", "faults"}


def test_every_test_module_is_in_a_tier() -> None:
    stray = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("test_*.py")
        if path.relative_to(TESTS).parts[0] not in TIERS
    ]
    assert stray == [], f"move these into tests/unit, tests/e2e or tests/faults: {stray}"
