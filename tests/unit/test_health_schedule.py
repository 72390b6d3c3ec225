"""The health wait's schedule and its end on a process exit (a real child process)."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time

from shiplane.targets.health import HealthOutcome, HealthPolicy, probe_until_healthy
from shiplane.targets.processes import quote_output
from tests.support.app_repo import free_port


def test_pauses_grow_from_ten_ms_to_the_interval() -> None:
    pauses = list(itertools.islice(HealthPolicy(interval=0.5).pauses(), 8))
    assert pauses[:4] == [0.01, 0.02, 0.04, 0.08]
    assert pauses[-2:] == [0.5, 0.5]
    # An interval below 10 ms is the pause from the start.
    assert list(itertools.islice(HealthPolicy(interval=0.005).pauses(), 2)) == [0.005, 0.005]


def test_a_process_exit_ends_the_wait_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"  # nothing listens: every check is refused

    async def wait() -> tuple[float, HealthOutcome]:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(7)"
        )
        exited = asyncio.ensure_future(child.wait())
        started = time.monotonic()
        outcome = await probe_until_healthy(url, HealthPolicy(interval=5, timeout=30), exited)
        return time.monotonic() - started, outcome

    elapsed, outcome = asyncio.run(wait())
    assert outcome.healthy is False
    assert outcome.exit_code == 7
    assert outcome.last == "exited with code 7"
    assert outcome.attempts >= 3  # checked from the start
    assert elapsed < 3, elapsed  # not the 5 s interval, nor the 30 s timeout


def test_quoted_output_starts_at_the_first_traceback_that_fits() -> None:
    lines = [
        "[INFO] Booting worker",
        "Traceback (most recent call last):",
        '  File "app.py", line 1',
        "RuntimeError: first",
        "Traceback (most recent call last):",
        '  File "app.py", line 1',
        "RuntimeError: second",
        "[ERROR] Worker failed to boot.",
    ]
    # The app's traceback first, gunicorn's after it: both, from the boot line's successor.
    assert quote_output(lines) == "\n".join(lines[1:])
    long = ["Traceback (most recent call last):", *(f"  frame {n}" for n in range(100))]
    assert quote_output([*long, *lines[4:]]) == "\n".join(lines[4:])  # the first does not fit
    plain = [f"line {n}" for n in range(100)]
    assert quote_output(plain) == "\n".join(plain[-30:])
