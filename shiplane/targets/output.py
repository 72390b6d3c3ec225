"""What of a process's output an error quotes: an exited instance's or worker's, a failed
release command's."""

from __future__ import annotations

# Its tracebacks and what follows them when that fits, else the last lines.
TRACEBACK_LINES = 80
OUTPUT_LINES = 30


def quote_output(lines: list[str]) -> str:
    """What to quote of an exited instance's output: from its first traceback on that still
    fits (gunicorn's own traceback follows the app's: both are quoted), else the last lines."""
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    fitting = [i for i in starts if len(lines) - i <= TRACEBACK_LINES]
    if fitting:
        return "\n".join(lines[fitting[0] :])
    return "\n".join(lines[-OUTPUT_LINES:])
