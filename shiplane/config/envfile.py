"""Reading ``KEY=VALUE`` env files. Every value read here is a secret."""

from __future__ import annotations

import re
from pathlib import Path

from shiplane.errors import ConfigError

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def read_env_file(path: Path, *, field: str) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{field} = {str(path)!r}: cannot read it ({exc.strerror})",
            next_action=f"create {path} with KEY=VALUE lines, or remove {field}",
        ) from exc
    return parse_env_text(text, path)


def parse_env_text(text: str, path: Path) -> dict[str, str]:
    """The values of an env file's text; ``path`` is what messages name (the user's file, also
    when the server parses a copy the client sent)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            # The line may hold a secret, so the message names only its number.
            raise ConfigError(
                f"{path}:{number}: not a KEY=VALUE line",
                next_action=f"fix line {number} of {path} (KEY=VALUE, # for comments)",
            )
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values
