"""A deploy's client work on the short road (``shiplane.cli.fast_client``): what the full road
does before and beside the request (``shiplane.cli.remote._send``), with the same functions
(``gitops.server_repo.locate_source`` and ``push_commits``, which import no Pydantic):

* the source: which commit ships, merged from which branch, from the raw TOML's ``branch`` and
  ``auto_merge`` of the environment;
* the commits into the server's repository, when this user may write it (single-user mode);
* the working tree's state, for the "uncommitted changes" warning.

Anything unusual answers None before a byte reached the server, and the full road takes the
command (and words what is wrong): a gated environment (promotion is its road, a person's
``--force`` needs a factor), a config value the models would refuse, a repository the full
road must name an error for, a server repository this user may not write.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiplane.errors import ShiplaneError
from shiplane.gitops import server_repo

# shiplane.config.models.NAME_RE: a name the models would refuse goes to the full road, which
# says so; it is checked here because the name becomes a path.
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
DIRTY = "the working tree has uncommitted changes: they were not deployed"  # as remote._send


@dataclass(frozen=True)
class PlainEnv:
    """An environment's branch settings read from the raw TOML (``server_repo.EnvBranch``)."""

    branch: str
    gated: bool
    auto_merge: bool


@dataclass
class Prepared:
    """What the request carries (``source``) and what is read after its answer."""

    source: dict[str, Any]
    dirty: subprocess.Popen[str]

    def warnings(self) -> list[str]:
        """The full road's warnings about the working tree (none when git could not tell)."""
        try:
            out, _ = self.dirty.communicate(timeout=30)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            self.discard()
            return []
        return [DIRTY] if self.dirty.returncode == 0 and out.strip() else []

    def discard(self) -> None:
        """Nothing was sent: the full road looks again."""
        self.dirty.kill()
        self.dirty.communicate()


def prepare(
    raw: dict[str, Any], config_path: Path, home: Path, args: dict[str, Any]
) -> Prepared | None:
    """The deploy's source, its commits sent to the server's repository; None: the full road."""
    env = _plain_env(raw, args.get("env"))
    app = (raw.get("app") or {}).get("name") if isinstance(raw.get("app"), dict) else None
    if env is None or env.gated or not isinstance(app, str) or not NAME_RE.fullmatch(app):
        return None
    repo = home / "apps" / app / "repo.git"  # shiplane.layout.Layout.repo
    if not server_repo.writable(repo):
        return None  # the server makes its repository, or it is not ours: the full road
    try:
        user_repo, source = server_repo.locate_source(config_path.parent, env, args.get("ref"))
        server_repo.push_commits(user_repo, repo, source.shas)
        dirty = subprocess.Popen(
            ["git", "-C", str(user_repo), "status", "--porcelain", "--untracked-files=no"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            encoding="utf-8",
            errors="replace",  # a file name in another encoding is still a change
        )
    except (ShiplaneError, OSError):
        return None  # the full road tries again and names what is wrong
    return Prepared(dataclasses.asdict(source), dirty)


def _plain_env(raw: dict[str, Any], name: object) -> PlainEnv | None:
    environments = raw.get("environments")
    if not isinstance(environments, dict) or not isinstance(name, str):
        return None
    env = environments.get(name)
    if not isinstance(env, dict):
        return None
    branch, auto_merge = env.get("branch"), env.get("auto_merge", False)
    if not isinstance(branch, str) or not branch or not isinstance(auto_merge, bool):
        return None
    return PlainEnv(branch, env.get("promote_from") is not None, auto_merge)
