"""Building a kept release again from its commit, where it lived (builds write absolute paths:
a virtualenv's): the commit from the server's repository (``git archive``), then the build of the
config the server keeps (the last one a client sent). A marker file stays while it builds: a
directory that still has it was interrupted and is built again. Used when the server starts
(``shiplane.server.rebuild``: what serves) and by rollback (``kept_releases``: its target)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from shiplane.config import snapshot
from shiplane.errors import BuildError
from shiplane.gitops import export
from shiplane.launch import launcher
from shiplane.launch.base import RunAs, run_captured
from shiplane.layout import Layout
from shiplane.procenv import app_python_layer, child_environment, release_venv
from shiplane.venvs import Builder, ensure_release_venv

MARKER = ".shiplane-rebuilding"


def needed(path: Path) -> bool:
    # A release whose virtualenv was removed by hand would start on shiplane's python.
    venv = release_venv(path)
    gone = venv is not None and not (venv / "pyvenv.cfg").is_file()
    return not path.is_dir() or (path / MARKER).exists() or gone


def rebuild_release(layout: Layout, run_as: RunAs, sha: str, path: Path) -> None:
    """Export commit ``sha`` into ``path`` and build it (GitError, BuildError when it cannot)."""
    shutil.rmtree(path, ignore_errors=True)
    export(layout.repo, sha, path)
    (path / MARKER).write_text("interrupted rebuilds are done again\n")
    launcher().prepare(path, run_as)
    config = snapshot.load(layout.config_dir).config
    env = child_environment()
    if config.app.python is None:
        # Its virtualenv as the build made it: the same one when it still exists.
        builder = Builder(env, run_as, config.deploy.build_timeout, lambda _line: None, str)
        ensure_release_venv(layout, path, builder)
    env = {**env, **app_python_layer(config.app.python, path)}
    for command in config.app.build:
        proc = run_captured(
            launcher(),
            shlex.split(command),
            run_as=run_as,
            cwd=str(path),
            env=env,
            timeout=config.deploy.build_timeout,
        )
        if proc.timed_out or proc.returncode != 0:
            raise BuildError(
                f"rebuilding release {path.name}: {command!r} "
                + ("timed out" if proc.timed_out else f"exited {proc.returncode}"),
                next_action="deploy a release again: `shiplane deploy ENV --redeploy`",
            )
    (path / MARKER).unlink()
