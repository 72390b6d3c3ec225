"""Loading a config's checks (inline ``[[verify.check]]`` tables and the checks file): part of
validating a config, so it lives here, apart from the machinery that runs checks
(``shiplane.verify``), which a client validating ``status`` need not import."""

from __future__ import annotations

import tomllib

from pydantic import ValidationError

from shiplane.config.checks import Check, ChecksFile, VersionCheck
from shiplane.config.loader import (
    LoadedConfig,
    describe_validation_error,
    load_toml,
    read_limited,
)
from shiplane.config.packing import CHECKS_KEY
from shiplane.errors import ConfigError

IMPLICIT_VERSION = VersionCheck(kind="version", name="version", group="smoke")


def load_checks(loaded: LoadedConfig) -> list[Check]:
    """Inline [[verify.check]] tables, then the checks file; names must be unique."""
    verify = loaded.config.verify
    checks: list[Check] = list(verify.check)
    if verify.checks_file:
        # Messages name the user's file, also when the server parses the copy a client sent.
        path = loaded.display.parent / verify.checks_file
        try:
            if loaded.sent is not None:
                text = loaded.sent_text(CHECKS_KEY, "verify.checks_file", verify.checks_file)
            else:
                text = read_limited(path)
            raw = load_toml(text, path)
            checks += ChecksFile.model_validate(raw).check
        except OSError as exc:
            raise ConfigError(
                f"verify.checks_file = {verify.checks_file!r}: cannot read it ({exc.strerror})",
                next_action=f"create {path} or remove verify.checks_file",
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})", next_action=f"fix {path}") from exc
        except ValidationError as exc:
            raise ConfigError(
                f"{path}: {describe_validation_error(exc)}", next_action=f"fix {path}"
            ) from None
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"check name(s) used twice: {', '.join(duplicates)}",
            next_action="give every [[verify.check]] its own name",
        )
    if not any(c.kind == "version" for c in checks):
        checks.append(IMPLICIT_VERSION)
    return checks
