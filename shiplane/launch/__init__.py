"""Starting what the app supplies: build commands, migrations, test suites, one-off commands and
the app's own processes.

In single-user mode they run as the server's own user (``DirectLauncher``). In enforced mode the
server is an unprivileged user itself, so a small privileged broker starts them as the app's
environment user (``shiplane-<app>-<env>``), who can read its own release and environment only
(``BrokerLauncher``). Every call site asks ``launcher()`` and passes the ``RunAs`` of the
environment, so the two modes share one code path.
"""

from __future__ import annotations

from shiplane.launch.base import Child, Launcher, RunAs, app_user_name

_current: Launcher | None = None


def launcher() -> Launcher:
    """The launcher of this process: direct unless the server installed the broker's."""
    global _current
    if _current is None:
        from shiplane.launch.direct import DirectLauncher

        _current = DirectLauncher()
    return _current


def install(chosen: Launcher) -> None:
    """Set once when an enforced server starts; it is the process's mode, not a per-call
    setting (which is why it may be a module global)."""
    global _current
    _current = chosen


__all__ = ["Child", "Launcher", "RunAs", "app_user_name", "install", "launcher"]
