"""What decides a request beside its operation: the role rule it answers to (shiplane.policy),
whether the gate decides it, and the person-only flags it passes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shiplane import policy
from shiplane.caller import Caller
from shiplane.config.loader import LoadedConfig
from shiplane.operations.boundary import GateFacts
from shiplane.state.db import StateDB

# Arguments that make an allowed operation a person's decision.
PERSON_FLAG_ARGS = {
    "force": "--force",
    "approve": "--approve",
    "discard_writes": "--discard-writes",
    "restore_db": "--restore-db",  # puts an old database back: a person's call
}


def rule_for(
    command: str, args: dict[str, Any]
) -> Callable[[LoadedConfig, Caller, set[str]], None]:
    """The role rule for this request (shiplane.policy): the token's role, or the caller's
    own word in single-user mode. ``gated_envs`` are the environments the config or a pin
    gates."""

    def rule(loaded: LoadedConfig, caller: Caller, gated_envs: set[str]) -> None:
        gated, flags = _gate_facts(gated_envs, args)
        policy.check_allowed(
            caller,
            command,
            gated,
            flags=flags,
            env=args.get("env"),
            code_only_rollback=command == "rollback" and args.get("to") is None,
        )

    return rule


def gated_for(command: str, args: dict[str, Any]) -> Callable[[LoadedConfig, set[str]], bool]:
    """Whether this request is one the role rules or the gate decide (policy.gated_operation):
    its result then says how binding that is (shiplane.protection)."""

    def gated_request(loaded: LoadedConfig, gated_envs: set[str]) -> bool:
        gated, flags = _gate_facts(gated_envs, args)
        return policy.gated_operation(command, gated, flags=flags)

    return gated_request


def gate_facts_for(name: str, args: dict[str, Any]) -> GateFacts:
    """The person-only flags a request passes, and where an ``approve`` finds its env."""
    flags = tuple(flag for key, flag in PERSON_FLAG_ARGS.items() if args.get(key))
    env_of = None
    if name in ("approve", "reject"):

        def env_of(db: StateDB | None) -> str | None:
            promotion = db.promotion(str(args.get("promotion_id"))) if db else None
            return str(promotion["env"]) if promotion else None

    ref = args.get("ref")
    return GateFacts(flags=flags, env_of=env_of, ref=str(ref) if ref else None)


def _gate_facts(gated_envs: set[str], args: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether the request's environment is gated, and the person-only flags it passes."""
    env = args.get("env")
    flags = [flag for key, flag in PERSON_FLAG_ARGS.items() if args.get(key)]
    return env is not None and env in gated_envs, flags
