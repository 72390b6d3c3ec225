"""Modules imported on first attribute access, for the CLI's startup.

A command line answers `--help` or `status` in a fraction of the time it takes to import every
operation (the pipeline, the verification machinery, the database drivers). Modules that hold
one function per operation reach the operations' modules through ``lazy_module``: a stand-in
exists at once, the module itself is imported when the first operation that needs it is called.
Type checkers see the real import (``if TYPE_CHECKING``).

Not ``importlib.util.LazyLoader``: before Python 3.12 two threads touching a module it has not
loaded yet can see it half-initialised (the server runs operations in threads). The stand-in
below only calls ``importlib.import_module``, whose per-module lock makes the first use safe.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule(ModuleType):
    """Stands in for the module ``__name__`` until an attribute is read."""

    _loaded: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:  # only for what the stand-in lacks
        module = self._loaded
        if module is None:
            module = importlib.import_module(self.__name__)
            self._loaded = module
        return getattr(module, attr)


def lazy_module(name: str) -> ModuleType:
    """``name``, imported when one of its attributes is first read."""
    return _LazyModule(name)
