"""A gated environment's protection, pinned in the app's state.db so that editing the working
tree's shiplane.toml cannot loosen it.

What is pinned per gated environment (``protected``): ``promote_from``, ``requires_approval``,
its branch, port, database URL (with its ``${SECRET}`` placeholders, never a value),
``backup``, the watch after each switch (``deploy.watch*``: an agent turning off the watch that
would roll a bad prod version back is loosening prod), and where it answers (``listen``,
``domains``, ``tls``); the set of environments
and their branches (a new environment on a gated branch would be a side door); and the verify
checks, by name and a hash of their definition (the required checks may grow, never shrink,
without a person).

``compare(pinned, current)`` sorts every difference into a loosening (refused until a person
confirms it with ``shiplane protect ENV``) or a tightening (applied at once). A changed check
definition is neither: the gate only counts evidence from the pinned definition
(``shiplane.operations.gate``), so an edited check simply does not open it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from shiplane.config.checks_file import load_checks
from shiplane.config.loader import LoadedConfig
from shiplane.config.tls import HSTS_YEAR
from shiplane.state.db import StateDB, now

__all__ = ["Changes", "Pin", "PinStore", "check_hashes", "compare", "protected"]


def check_hashes(loaded: LoadedConfig) -> dict[str, str]:
    """Each verify check's name and a hash of its definition."""
    hashes = {}
    for check in load_checks(loaded):
        canonical = json.dumps(check.model_dump(mode="json", by_alias=True), sort_keys=True)
        hashes[check.name] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return hashes


def protected(loaded: LoadedConfig, env: str) -> dict[str, Any]:
    """What the config says about ``env``'s protection, in the form a pin stores."""
    config = loaded.config
    environment = config.environments[env]
    return {
        "promote_from": environment.promote_from,
        "requires_approval": environment.requires_approval,
        "branch": environment.branch,
        "port": environment.port,
        "database_url": environment.database.url or config.database.url,
        "backup": environment.backup,
        # Where and how it is reachable: a changed listen, domain or certificate could point
        # prod's name at something else.
        "listen": environment.listen,
        "domains": sorted(environment.domains),
        "tls": environment.tls.model_dump(mode="json") if environment.tls else None,
        "environments": {name: e.branch for name, e in sorted(config.environments.items())},
        "checks": check_hashes(loaded),
        "watch": {
            "seconds": config.deploy.watch,
            "failed_probes": config.deploy.watch_failed_probes,
            "min_requests": config.deploy.watch_min_requests,
            "error_rate": config.deploy.watch_error_rate,
        },
    }


@dataclass
class Changes:
    """How a config differs from a pin: what it loosens and what it tightens, one line each."""

    loosened: list[str] = field(default_factory=list)
    tightened: list[str] = field(default_factory=list)


# Settings where any change needs a person: no direction of change is safe to assume.
_EXACT = ("branch", "port", "database_url", "listen", "domains")
_ADDED_LATER = frozenset({"listen", "domains", "tls"})
# The watch's settings, each with the direction that watches less: a shorter watch, or more
# failed probes, requests or 5xx rate before it calls a version bad.
_WATCH_LOOSER = {"seconds": -1, "failed_probes": 1, "min_requests": 1, "error_rate": 1}


def compare(pinned: dict[str, Any], current: dict[str, Any]) -> Changes:
    changes = Changes()
    loose, tight = changes.loosened, changes.tightened
    if current["promote_from"] != pinned["promote_from"]:
        loose.append(f"promote_from {pinned['promote_from']!r} -> {current['promote_from']!r}")
    for key in ("requires_approval", "backup"):
        was, now_ = bool(pinned.get(key)), bool(current.get(key))
        if was and not now_:
            loose.append(f"{key} true -> false")
        elif now_ and not was:
            tight.append(f"{key} false -> true")
    for key in _EXACT:
        if key not in pinned and key in _ADDED_LATER:
            continue  # a pin made before shiplane pinned this key: the next pin takes it
        if current.get(key) != pinned.get(key):
            loose.append(f"{key} {_shown(key, pinned.get(key))} -> {_shown(key, current.get(key))}")
    if "tls" in pinned:
        _compare_tls(pinned["tls"], current.get("tls"), changes)
    if "watch" in pinned:  # a pin made before shiplane pinned the watch: the next pin takes it
        _compare_watch(pinned["watch"], current.get("watch") or {}, changes)
    _compare_environments(pinned, current, changes)
    pinned_checks: dict[str, str] = pinned.get("checks") or {}
    current_checks: dict[str, str] = current.get("checks") or {}
    removed = sorted(set(pinned_checks) - set(current_checks))
    if removed:
        loose.append(f"required check(s) removed: {', '.join(removed)}")
    added = sorted(set(current_checks) - set(pinned_checks))
    if added:
        tight.append(f"check(s) added: {', '.join(added)}")
    return changes


def _compare_tls(was: dict[str, Any] | None, now_: dict[str, Any] | None, changes: Changes) -> None:
    """Less HTTPS is a loosening (TLS dropped, the redirect off, HSTS shorter); more is a
    tightening; new certificate files or ACME settings change no protection and apply at once
    (a broken certificate must be fixable without waiting for a person)."""
    if was == now_:
        return
    if was is None or now_ is None:
        target = changes.tightened if was is None else changes.loosened
        target.append(f"tls {'added' if was is None else 'removed'}")
        return
    less = []
    if was.get("redirect_http") and not now_.get("redirect_http"):
        less.append("tls.redirect_http true -> false")
    if _hsts_seconds(now_.get("hsts")) < _hsts_seconds(was.get("hsts")):
        less.append(f"tls.hsts {was.get('hsts')!r} -> {now_.get('hsts')!r}")
    changes.loosened.extend(less)
    if not less:
        changed = sorted(k for k in set(was) | set(now_) if was.get(k) != now_.get(k))
        changes.tightened.append(f"tls {', '.join(changed)} changed")


def _compare_watch(was: dict[str, Any], now_: dict[str, Any], changes: Changes) -> None:
    for key, looser in _WATCH_LOOSER.items():
        before, after = was.get(key), now_.get(key)
        if before == after or before is None or after is None:
            continue
        target = changes.loosened if (after - before) * looser > 0 else changes.tightened
        target.append(f"deploy.{_watch_key(key)} {before:g} -> {after:g}")


def _watch_key(key: str) -> str:
    return "watch" if key == "seconds" else f"watch_{key}"


def _hsts_seconds(value: Any) -> int:
    if value is True:
        return HSTS_YEAR
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _compare_environments(
    pinned: dict[str, Any], current: dict[str, Any], changes: Changes
) -> None:
    was: dict[str, str] = pinned.get("environments") or {}
    now_: dict[str, str] = current.get("environments") or {}
    gated_branches = {pinned["branch"]}
    for name in sorted(set(was) | set(now_)):
        before, after = was.get(name), now_.get(name)
        if before == after:
            continue
        if before is None:
            # A new environment is harmless unless it deploys a gated branch (a side door).
            target = changes.loosened if after in gated_branches else changes.tightened
            target.append(f"environment {name} added (branch {after!r})")
        elif after is None:
            changes.loosened.append(f"environment {name} removed")
        else:
            changes.loosened.append(f"environments.{name}.branch {before!r} -> {after!r}")


def _shown(key: str, value: Any) -> str:
    """A database URL's password never reaches a message, even a placeholder's neighbour."""
    if key == "database_url" and isinstance(value, str) and "@" in value:
        scheme, _, rest = value.partition("://")
        return repr(f"{scheme}://***@{rest.rpartition('@')[2]}")
    return repr(value)


@dataclass(frozen=True)
class Pin:
    env: str
    settings: dict[str, Any]
    pinned_at: str
    pinned_by: str

    @property
    def gated(self) -> bool:
        return self.settings.get("promote_from") is not None


class PinStore:
    """The pins table of an app's state.db."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def get(self, env: str) -> Pin | None:
        row = self.db.conn.execute("SELECT * FROM pins WHERE env = ?", (env,)).fetchone()
        return _pin(row) if row else None

    def all(self) -> dict[str, Pin]:
        rows = self.db.conn.execute("SELECT * FROM pins ORDER BY env").fetchall()
        return {row["env"]: _pin(row) for row in rows}

    def put(self, env: str, settings: dict[str, Any], by: str) -> Pin:
        self.db.conn.execute(
            "INSERT OR REPLACE INTO pins (env, settings, pinned_at, pinned_by) VALUES (?, ?, ?, ?)",
            (env, json.dumps(settings, sort_keys=True), now(), by),
        )
        pin = self.get(env)
        assert pin is not None
        return pin


def _pin(row: Any) -> Pin:
    return Pin(row["env"], json.loads(row["settings"]), row["pinned_at"], row["pinned_by"])


def tightened(pinned: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The pin after a config that only tightens it: the config's settings, but every pinned
    check keeps its pinned definition (an edit of one is not a tightening anyone confirmed)."""
    checks = {**(current.get("checks") or {}), **(pinned.get("checks") or {})}
    return {**current, "checks": checks}
