"""The checks of the commit being deployed: its release directory's shiplane.toml and checks
file, not the client's working tree (issue 15 item 4). ``deploy --ref OLD`` verifies OLD with
OLD's checks; a newer working tree's checks (for a column only it has) do not apply to it.

Only the checks come from the commit. Everything else a deployment uses (the run command, the
database, the environments and the gated settings pinned in state.db) still comes from the
config the client sent, which the gate compares with its pin before anything runs. The gate's
own evidence (`shiplane verify` of the source environment) is unchanged too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shiplane.config.checks import Check
from shiplane.config.loader import CONFIG_NAME, LoadedConfig, parse_config
from shiplane.errors import ConfigError
from shiplane.verify.runner import load_checks


@dataclass(frozen=True)
class CommitChecks:
    checks: list[Check]
    source: str  # "commit" | "client"
    note: str  # why, when not the commit's


def commit_checks(loaded: LoadedConfig, release_dir: str | Path | None) -> CommitChecks:
    """The release's checks; the client's when the commit has no shiplane.toml at its top
    (a config kept elsewhere, or a commit from before the app used shiplane) or when the
    commit's file no longer loads (a key this shiplane does not know): the note says which."""
    if release_dir is None:
        return CommitChecks(load_checks(loaded), "client", "no release directory")
    path = Path(release_dir) / CONFIG_NAME
    if not path.is_file():
        return CommitChecks(load_checks(loaded), "client", f"the commit has no {CONFIG_NAME}")
    try:
        config = parse_config(path.read_text(encoding="utf-8"), path)
        checks = load_checks(LoadedConfig(config=config, path=path))
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        reason = exc.message if isinstance(exc, ConfigError) else str(exc)
        return CommitChecks(load_checks(loaded), "client", f"the commit's config: {reason}")
    return CommitChecks(checks, "commit", "")
