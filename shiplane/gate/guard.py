"""The guard between a sent config and the pinned protection (``shiplane.gate.pins``).

Before anything runs (``refuse``): an environment the pin says is gated stays gated whatever
the config says; a config that loosens a pin is refused (exit 6) naming each change, until a
person confirms it with ``shiplane protect ENV``; a new environment on a gated branch is a
side door and refused the same way; in enforced mode an unpinned gated environment takes no
new code until a person pins it. After the root is open (``apply``): single-user mode pins
every gated environment at the app's first deploy, and a config that only tightens a pin
updates it at once.
"""

from __future__ import annotations

from shiplane.config.loader import LoadedConfig
from shiplane.errors import RefusedError
from shiplane.gate import events
from shiplane.gate.pins import Pin, PinStore, compare, protected, tightened
from shiplane.protection import Mode
from shiplane.state.db import StateDB

# What reads, asks or only finishes dead work: a loosened config does not stop these.
READ_ONLY = frozenset(
    {
        "status",
        "history",
        "logs",
        "report",
        "backups",
        "migrate status",
        "migrate lint",
        "migrate rehearse",
        "env list",
        "recover",
        "challenge",
        "reject",  # ends a pending promotion: never opens the gate
    }
)
# What brings new code into an environment (a pin is made, or required, for these).
NEW_CODE = frozenset({"deploy", "promote", "approve"})


def read_pins(db: StateDB | None) -> dict[str, Pin]:
    return PinStore(db).all() if db is not None else {}


def gated_envs(loaded: LoadedConfig, pins: dict[str, Pin]) -> set[str]:
    """Every environment gated by the config or by a pin."""
    by_config = {name for name, e in loaded.config.environments.items() if e.gated}
    return by_config | {name for name, pin in pins.items() if pin.gated}


def promotion_road(source: str | None, env: str, ref: str | None) -> str:
    """The commands that bring ``ref`` (default: what ``source`` serves) into gated ``env``."""
    deploy = f"shiplane deploy {source} --ref {ref} && " if ref else ""
    return f"{deploy}shiplane verify {source} && shiplane promote {env}"


def refuse(
    loaded: LoadedConfig,
    command: str,
    env: str | None,
    pins: dict[str, Pin],
    mode: Mode,
    *,
    force: bool = False,
    ref: str | None = None,
) -> None:
    """RefusedError (exit 6) when this request would get past the pinned protection; a
    refused ``deploy --ref REF`` names the road for REF itself (through the source env)."""
    if env is None or command in READ_ONLY or env not in loaded.config.environments:
        return
    environment = loaded.config.environments[env]
    pin = pins.get(env)
    if pin is None:
        for other in pins.values():
            if other.gated and environment.branch == other.settings["branch"]:
                raise RefusedError(
                    f"environments.{env}.branch = {environment.branch!r} is the branch of "
                    f"gated environment {other.env}: a side door into it",
                    step="protect",
                    next_action=f"use another branch for {env}; {other.env} takes code only "
                    f"by `shiplane promote {other.env}`",
                )
        if environment.gated and command == "deploy" and not force:
            raise RefusedError(
                f"{env} is gated (promote_from = {environment.promote_from!r}): new code "
                "arrives only by promotion",
                step="gate",
                next_action=promotion_road(environment.promote_from, env, ref),
            )
        if environment.gated and mode == "enforced" and command in NEW_CODE:
            raise RefusedError(
                f"{env} is gated (promote_from = {environment.promote_from!r}) but its "
                "protection is not pinned on this enforced host",
                step="protect",
                next_action=f"a person pins it: shiplane protect {env} --passphrase",
            )
        return
    if not pin.gated:
        return
    dropped = not environment.gated
    if command == "deploy" and not force:
        raise RefusedError(
            f"{env} is gated (pinned: promote_from = {pin.settings['promote_from']!r})"
            + (
                "; the config sent dropped promote_from, which only a person can confirm"
                if dropped
                else ""
            )
            + ": new code arrives only by promotion",
            step="gate",
            next_action=promotion_road(pin.settings["promote_from"], env, ref),
        )
    if command == "protect":
        return
    loosened = compare(pin.settings, protected(loaded, env)).loosened
    if loosened:
        raise RefusedError(
            f"the config loosens {env}'s pinned protection: {'; '.join(loosened)}",
            step="protect",
            next_action=f"revert the change in shiplane.toml, or a person confirms it: "
            f"shiplane protect {env} --passphrase",
        )


def apply(
    db: StateDB, loaded: LoadedConfig, command: str, env: str | None, mode: Mode, actor: str
) -> None:
    """Pin what the first deploy pins (single-user mode) and take tightenings at once."""
    store = PinStore(db)
    pins = store.all()
    # approve only continues what a promote (which pinned) began: an unknown id pins nothing.
    if mode == "single-user" and command in ("deploy", "promote"):
        for name, environment in loaded.config.environments.items():
            if environment.gated and name not in pins:
                store.put(name, protected(loaded, name), actor)
                events.record(db, name, command, "pinned", actor, by="first deploy")
    if env is None or env not in pins or command in READ_ONLY or command == "protect":
        return
    pin = pins[env]
    current = protected(loaded, env)
    changes = compare(pin.settings, current)
    if changes.tightened and not changes.loosened:
        store.put(env, tightened(pin.settings, current), actor)
        events.record(db, env, command, "tightened", actor, changes=changes.tightened)
