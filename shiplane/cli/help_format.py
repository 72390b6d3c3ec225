"""How ``--help`` shows options: a flag shows no type. Typer (0.29) prints ``<bool>`` beside every
flag, which reads as if the flag took a value; agents that learn a command from ``--help`` then
pass ``--force true``. Applied once, when the CLI is imported."""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_shown_type = TyperOption.display_type_rich


def _no_type_for_flags(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag:
        return None
    return _shown_type(self, ctx)


def apply() -> None:
    TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]
