"""Modules imported on first attribute access, for the CLI's startup.

A command line answers `--help` or `status` in a fraction of the time it takes to import every
operation (the pipeline, the verification machinery, the database drivers). Modules that hold
one function per operation import the operations' modules through ``lazy_module``: the module
object exists at once, its code runs when the first operation that needs it is called.
Type checkers see the real import (``if TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``name``, imported when one of its attributes is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
