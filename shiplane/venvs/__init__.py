"""Per-release, content-addressed virtualenvs (issue 15 item 3): the build makes (or reuses)
``<app root>/venvs/<sha256 of the dependency files + python>`` and links the release to it;
migrations, checks and processes then run with its python (``shiplane.procenv``)."""

from shiplane.venvs.build import Builder, ReleaseVenv, ensure_release_venv
from shiplane.venvs.sources import Dependencies, dependencies
from shiplane.venvs.store import Store

__all__ = [
    "Builder",
    "Dependencies",
    "ReleaseVenv",
    "Store",
    "dependencies",
    "ensure_release_venv",
]
