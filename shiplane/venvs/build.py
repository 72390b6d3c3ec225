"""Give a release its virtualenv: the one with its dependencies' key when it exists (reused,
no install), else built once into the app's store and published."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shiplane.errors import BuildError
from shiplane.launch import launcher
from shiplane.launch.base import RunAs, run_captured
from shiplane.launch.direct import DirectLauncher
from shiplane.layout import Layout
from shiplane.venvs import installers
from shiplane.venvs.sources import Dependencies, dependencies
from shiplane.venvs.store import BUILDS, Store

QUOTE_CHARS = 600


@dataclass(frozen=True)
class ReleaseVenv:
    key: str
    path: Path  # its published name, <app root>/venvs/<key>
    source: str  # the dependency file it was made from
    reused: bool
    tool: str | None  # what built it now (None: reused)
    seconds: float

    def summary(self) -> str:
        if self.reused:
            return f"virtualenv {self.key[:12]} reused ({self.source} unchanged)"
        made = f"built from {self.source} by {self.tool} in {self.seconds:.1f}s"
        return f"virtualenv {self.key[:12]} {made}"

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "path": str(self.path),
            "source": self.source,
            "reused": self.reused,
            "tool": self.tool,
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class Builder:
    """How to run the install commands: as whom, with what environment, for how long."""

    env: dict[str, str]
    run_as: RunAs | None
    timeout: float
    log: Callable[[str], None]
    redact: Callable[[str], str]


def ensure_release_venv(layout: Layout, release_dir: Path, builder: Builder) -> ReleaseVenv | None:
    """Link ``release_dir`` to the virtualenv of its dependency files (None: it has none)."""
    deps = dependencies(release_dir)
    if deps is None:
        return None
    if not isinstance(launcher(), DirectLauncher):
        # Enforced mode: each environment's user owns only its releases and shared dir (the
        # broker hands over nothing else), so a store shared by the app's environments cannot
        # be built as them yet; the app runs as before, on the interpreter it names.
        builder.log(f"{deps.kind}: no virtualenv built in enforced mode; set [app] python")
        return None
    key = deps.key(release_dir)
    cache = layout.wheel_cache
    store = Store(layout.venvs)
    started = time.monotonic()
    tool = None
    with store.locked():
        reused = store.published(key)
        if not reused:
            store.clear_unfinished()
            tool = _build(store, key, deps, release_dir, cache, builder)
        store.link(release_dir, key)
    return ReleaseVenv(key, store.path(key), deps.kind, reused, tool, time.monotonic() - started)


def _build(
    store: Store, key: str, deps: Dependencies, release_dir: Path, cache: Path, builder: Builder
) -> str:
    venv = store.new_build(key)
    try:
        plan = installers.plan(
            deps, venv, release_dir, cache, installers.find_uv(builder.env.get("PATH", ""))
        )
        env = {**builder.env, **plan.env}
        for argv in plan.commands:
            _run(argv, env, release_dir, builder)
            if argv is plan.commands[0]:
                installers.write_requirements(deps, venv)
        store.publish(key, venv)
    except BaseException:
        # Nothing half-built stays: the next build starts clean, no name points at this one.
        shutil.rmtree(venv, ignore_errors=True)
        raise
    return plan.tool


def _run(argv: list[str], env: dict[str, str], cwd: Path, builder: Builder) -> None:
    # Short enough to quote: the release's files by their own names, the new one as <venv>.
    shown = " ".join([Path(argv[0]).name, *(_short(arg, cwd) for arg in argv[1:])])
    builder.log(f"$ {shown}")
    try:
        proc = run_captured(
            launcher(), argv, run_as=builder.run_as, cwd=cwd, env=env, timeout=builder.timeout
        )
    except OSError as exc:
        raise BuildError(
            f"virtualenv: {shown!r} could not start: {exc.strerror or exc}",
            next_action="install python3-venv (or uv) on the server",
        ) from exc
    builder.log(proc.stdout + proc.stderr)
    if proc.timed_out:
        raise BuildError(
            f"virtualenv: {shown!r} timed out after {builder.timeout:.0f}s",
            next_action="raise deploy.build_timeout, or check the package index is reachable",
        )
    if proc.returncode != 0:
        quote = builder.redact(error_lines(proc.stderr or proc.stdout))
        raise BuildError(
            f"virtualenv: {shown!r} exited {proc.returncode}: {quote}",
            next_action="fix the dependency pins and commit; full output in the deployment log",
        )


def _short(arg: str, release_dir: Path) -> str:
    if arg.startswith(f"{release_dir}/"):
        return arg.removeprefix(f"{release_dir}/")
    _store, marker, tail = arg.partition(f"/{BUILDS}/")
    if marker:
        _build, slash, rest = tail.partition("/")
        return "<venv>" + slash + rest
    return arg


def error_lines(output: str) -> str:
    """The installer's own verdict: pip's "ERROR: ..." lines, or uv's "error: ..." with the
    cause it gives below it, else the last lines."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    verdict = [line for line in lines if line.startswith("ERROR:")]
    uv = next((i for i, line in enumerate(lines) if line.startswith("error:")), None)
    if not verdict and uv is not None:
        verdict = lines[uv:]
    text = " / ".join(verdict or lines[-4:]) or "no output"
    return text[-QUOTE_CHARS:]
