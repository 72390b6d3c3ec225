"""The host's enforced-mode marker, ``/etc/shiplane/enforced``: where the one server of this host
lives and as whom it runs.

    home = "/var/lib/shiplane"          # the server's root (state, repositories, releases)
    socket = "/run/shiplane/server.sock"  # the control socket clients connect to
    user = "shiplane"                   # the OS user the server runs as; owns ``home`` (0700)
    group = "shiplane-clients"          # the clients' group: agents and persons are members
    apps_group = "shiplane-apps"        # the group of the per-app users that run app code

``shiplane server install`` writes it. When it exists, clients use its socket and home and never
start a private server of their own. The marker is not a security boundary (whoever can write
/etc can do anything anyway): the OS permissions on ``home`` and the socket are. It only prevents
an accidental fall-back to a single-user server that would look like the real one.

The /etc directory is ``$SHIPLANE_ETC`` when set (tests install into temporary directories).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shiplane.errors import ConfigError

DEFAULT_ETC = Path("/etc")
MARKER = Path("shiplane") / "enforced"
# useradd's own rule for portable names (NAME_REGEX): what `server install` can create.
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

Name = Annotated[str, Field(min_length=1, max_length=32)]


class HostConfig(BaseModel):
    """The marker's keys; every one is required, unknown ones are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    home: Path
    socket: Path
    user: Name
    group: Name
    apps_group: Name

    @field_validator("home", "socket", mode="before")
    @classmethod
    def _absolute(cls, value: Any) -> Any:
        # Strict mode wants a Path; TOML gives a str. Relative paths would depend on the cwd of
        # whoever reads the marker, so they are refused.
        if isinstance(value, str):
            if not value.startswith("/"):
                raise ValueError(f"must be an absolute path, got {value!r}")
            return Path(value)
        return value

    @field_validator("user", "group", "apps_group")
    @classmethod
    def _os_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid user or group name ([a-z_][a-z0-9_-]*)")
        return value

    def to_toml(self) -> str:
        return "".join(
            f'{key} = "{value}"\n'
            for key, value in (
                ("home", self.home),
                ("socket", self.socket),
                ("user", self.user),
                ("group", self.group),
                ("apps_group", self.apps_group),
            )
        )


def etc_dir() -> Path:
    return Path(os.environ.get("SHIPLANE_ETC") or DEFAULT_ETC)


def marker_path(etc: Path | None = None) -> Path:
    return (etc or etc_dir()) / MARKER


def load_host_config(etc: Path | None = None) -> HostConfig | None:
    """The host's marker, or None when this host is in single-user mode (no marker). A marker
    that exists but cannot be read or is invalid is an error: silently falling back to a
    private server is exactly what it is there to prevent."""
    path = marker_path(etc)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the enforced-mode marker {path}: {exc.strerror}",
            step="host",
            next_action=f"make {path} readable by every user (0644, root-owned)",
        ) from exc
    try:
        data = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}",
            step="host",
            next_action="rewrite it with `shiplane server install` (as root)",
        ) from exc
    return parse_host_config(
        data,
        source=str(path),
        fix="fix the key in the marker, or rewrite it with `shiplane server install`",
    )


def parse_host_config(data: dict[str, Any], *, source: str, fix: str) -> HostConfig:
    """``data`` as a HostConfig, or a ConfigError (exit 64) naming each bad key and value."""
    try:
        return HostConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            f"{source}: {_describe(exc, data)}", step="host", next_action=fix
        ) from exc


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """Each error as ``key = value: what is wrong``, like shiplane.toml's errors."""
    parts = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(file)"
        value = data.get(key, "(missing)") if error["type"] != "extra_forbidden" else data[key]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (known: home, socket, user, group, apps_group)"
        parts.append(f"{key} = {value!r}: {message}")
    return "; ".join(parts)
