"""The key of everything the server runs per environment: an (app, env) pair."""

from __future__ import annotations

from typing import NamedTuple


class EnvKey(NamedTuple):
    app: str
    env: str

    def __str__(self) -> str:
        return f"{self.app}/{self.env}"
