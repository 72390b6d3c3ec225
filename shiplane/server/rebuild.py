"""A serving release whose directory is gone (removed by hand, a disk cleanup, a restore of
the host without it) is built again from its commit, so the environment comes back when the
server starts instead of staying down for good: the commit from the server's repository
(``git archive``), then the build of the config the server keeps (the last one a client sent).

It is built where it lived (builds write absolute paths: a virtualenv's), with a marker file
while it builds: a directory that still has the marker was interrupted and is built again."""

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
from shiplane.procenv import app_python_layer, child_environment
from shiplane.targets.base import InstanceSpec

MARKER = ".shiplane-rebuilding"


def needed(spec: InstanceSpec) -> bool:
    path = Path(spec.release_dir)
    return not path.is_dir() or (path / MARKER).exists()


def rebuild(layout: Layout, spec: InstanceSpec) -> None:
    """Export and build ``spec``'s release again where it was (BuildError when it cannot)."""
    rebuild_release(layout, RunAs(spec.app, spec.env), spec.sha, Path(spec.release_dir))


def rebuild_release(layout: Layout, run_as: RunAs, sha: str, path: Path) -> None:
    """Export commit ``sha`` into ``path`` and build it (GitError, BuildError when it cannot)."""
    shutil.rmtree(path, ignore_errors=True)
    export(layout.repo, sha, path)
    (path / MARKER).write_text("interrupted rebuilds are done again\n")
    launcher().prepare(path, run_as)
    config = snapshot.load(layout.config_dir).config
    env = {**child_environment(), **app_python_layer(config.app.python, path)}
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
