"""A serving release whose directory is gone (removed by hand, a disk cleanup, a restore of
the host without it) is built again from its commit when the server starts, so the environment
comes back instead of staying down for good (``shiplane.pipeline.rebuild_release``)."""

from __future__ import annotations

from pathlib import Path

from shiplane.launch.base import RunAs
from shiplane.layout import Layout
from shiplane.pipeline import rebuild_release as build
from shiplane.targets.base import InstanceSpec


def needed(spec: InstanceSpec) -> bool:
    return build.needed(Path(spec.release_dir))


def rebuild(layout: Layout, spec: InstanceSpec) -> None:
    """Export and build ``spec``'s release again where it was (BuildError when it cannot)."""
    build.rebuild_release(layout, RunAs(spec.app, spec.env), spec.sha, Path(spec.release_dir))
