"""`shiplane env set|unset|list ENV`: variables and secrets the server keeps per environment,
merged over shiplane.toml's ``env`` (kept wins) and applied with a zero-downtime restart.

A secret's value is never shown again: `list` prints ``***``, results name keys only, and the
env's Redactor masks it in every log (shiplane.operations.settings puts it among the secrets).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from shiplane.config.redact import MASK
from shiplane.errors import ConfigError
from shiplane.operations.restart import restart
from shiplane.operations.session import Session
from shiplane.operations.settings import settings_for
from shiplane.results import Result
from shiplane.state.envvars import EnvVar, EnvVarStore

KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Set by shiplane for every instance: a kept value would be silently overwritten, or worse,
# point the app at another database or port than the one shiplane manages.
RESERVED = frozenset({"PORT", "DATABASE_URL"})
RESERVED_PREFIX = "SHIPLANE_"
# The Redactor masks values from this length on (shorter ones would mask ordinary words).
MIN_MASKED = 4


def check_key(key: str) -> None:
    """One clear usage error (exit 64) naming the first bad key; never a value."""
    if not KEY.match(key):
        raise ConfigError(
            f"invalid variable name {key!r}: use capitals, digits and _ (^[A-Z_][A-Z0-9_]*$)",
            step="usage",
            next_action="rename it, e.g. GREETING or API_KEY",
        )
    if key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise ConfigError(
            f"variable {key!r} is set by shiplane itself (PORT, DATABASE_URL, SHIPLANE_*)",
            step="usage",
            next_action="choose another name; DATABASE_URL comes from [database] url",
        )


def parse_assignments(assignments: Iterable[str], secret: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` items as a dict; the value may contain ``=`` and may be empty."""
    values: dict[str, str] = {}
    for number, item in enumerate(assignments, start=1):
        key, sep, value = item.partition("=")
        if not sep:
            # With --secret, an item without "=" may well be the secret itself: name its place.
            what = f"argument {number}" if secret else repr(key[:60])
            raise ConfigError(
                f"expected KEY=VALUE, got {what} with no '='",
                step="usage",
                next_action="write each variable as KEY=VALUE",
            )
        check_key(key)
        values[key] = value
    if not values:
        raise ConfigError(
            "no variable given", step="usage", next_action="shiplane env set ENV KEY=VALUE"
        )
    return values


def check_set(assignments: list[str], secret: bool = False) -> None:
    parse_assignments(assignments, secret)


def check_unset(keys: list[str]) -> None:
    if not keys:
        raise ConfigError(
            "no variable given", step="usage", next_action="shiplane env unset ENV KEY"
        )
    for key in keys:
        check_key(key)


def env_set(session: Session, env: str, assignments: list[str], secret: bool) -> Result:
    values = parse_assignments(assignments, secret)
    store = EnvVarStore(session.db)
    before = store.all(env)
    store.set(env, values, secret=secret)
    result = _apply(session, env, "env set", before)
    result.data.update(set=sorted(values), secret=secret)
    short = sorted(k for k, v in values.items() if secret and 0 < len(v) < MIN_MASKED)
    if short:
        result.warnings.append(
            f"{', '.join(short)}: shorter than {MIN_MASKED} characters, so not masked in output "
            "the app or a command prints (too short to tell from ordinary text); listed as ***"
        )
    return result


def env_unset(session: Session, env: str, keys: list[str]) -> Result:
    store = EnvVarStore(session.db)
    before = store.all(env)
    removed = store.unset(env, keys)
    if not removed:
        result = Result(command="env unset", env=env)
        result.data.update(unset=[], applied=False)
        result.warnings.append(f"none of {', '.join(keys)} is kept for {env}: nothing changed")
        return result
    result = _apply(session, env, "env unset", before)
    result.data["unset"] = removed
    return result


def env_list(session: Session, env: str) -> Result:
    """What instances of ``env`` get, key by key, with where each value comes from."""
    settings = settings_for(session.loaded, session.db, env)
    kept = {v.key: v for v in EnvVarStore(session.db).all(env)}
    variables: list[dict[str, Any]] = []
    for key in sorted(settings.variables.keys() | settings.secrets.keys()):
        is_secret = key in settings.secrets
        source = "server" if key in kept else ("env_file" if is_secret else "config")
        variables.append(
            {
                "key": key,
                "value": MASK if is_secret else settings.variables[key],
                "secret": is_secret,
                "source": source,
            }
        )
    result = Result(command="env list", env=env)
    result.data["variables"] = variables
    return result


def _apply(session: Session, env: str, command: str, before: list[EnvVar]) -> Result:
    """Restart what serves with the new values; undo the change when that restart fails, so
    what state.db keeps is always what serves."""
    if session.db.env_state(env) is None:
        result = Result(command=command, env=env)
        result.data.update(applied=False, restart=None)
        result.warnings.append(f"nothing serves {env} yet: the next deploy applies it")
        return result
    restarted = restart(session, env)
    restarted.command = command
    restarted.data.update(applied=restarted.ok, restart=restarted.deployment_id)
    if not restarted.ok:
        EnvVarStore(session.db).replace_all(env, before)
        restarted.data["reverted"] = True
        if restarted.error is not None:
            restarted.error["next_action"] = (
                f"the change was undone and {env} serves as before; read "
                f"`shiplane logs {restarted.deployment_id}`, fix, and set it again"
            )
    return restarted
