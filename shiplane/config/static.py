"""``[app] static``: URL prefixes the front door serves from directories of the release.

    static = { "/static" = "staticfiles" }     # what Django's collectstatic writes
    static_max_age = 3600                       # Cache-Control max-age of unfingerprinted files

A prefix is a URL path (``/static``: ``/static/app.css`` is ``staticfiles/app.css``), a
directory is relative to the release and stays inside it: the door refuses anything that
resolves outside (``shiplane.frontdoor.static``), and the config says so first.
"""

from __future__ import annotations

from pathlib import PurePosixPath

# Characters a prefix may hold: those a URL path carries unencoded, so it matches as written.
PREFIX_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")
EXAMPLE = 'e.g. static = { "/static" = "staticfiles" }'


def check_static(value: dict[str, str]) -> dict[str, str]:
    """The mount map normalised (prefix without a trailing slash), or a ValueError naming the
    mount and the fix; the loader adds the key ``app.static``."""
    mounts: dict[str, str] = {}
    for prefix, directory in value.items():
        where = f'mount "{prefix}" = "{directory}"'
        if not prefix.startswith("/") or prefix.strip("/") == "":
            raise ValueError(
                f"{where}: the prefix must start with / and name a path, like /static; {EXAMPLE}"
            )
        if not set(prefix) <= PREFIX_CHARS or "//" in prefix:
            raise ValueError(
                f"{where}: the prefix may hold only letters, digits, '-', '.', '_', '~' and single"
                f" '/'; {EXAMPLE}"
            )
        segments = prefix.strip("/").split("/")
        if any(s in (".", "..") for s in segments) or prefix.startswith("/_deploy"):
            raise ValueError(f"{where}: the prefix must not contain . or .. nor be /_deploy/")
        path = PurePosixPath(directory)
        if not directory or path.is_absolute() or "\\" in directory or "\x00" in directory:
            raise ValueError(
                f'{where}: the directory must be relative to the release, e.g. "staticfiles"'
            )
        if ".." in path.parts or str(path) == ".":
            raise ValueError(
                f"{where}: the directory must be inside the release (no .., not the release"
                " itself: its code and config would be public)"
            )
        normal = prefix.rstrip("/")
        if normal in mounts:
            raise ValueError(f"{where}: the prefix {normal} is mounted twice")
        mounts[normal] = str(path)
    return mounts
