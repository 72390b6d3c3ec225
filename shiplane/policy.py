"""The role rules: what an ``agent`` caller may do, in one table. A ``person`` may do everything.

``check_allowed(caller, operation, gated)`` raises RefusedError (exit 6, step "policy") when the
caller's role may not run ``operation``; ``operation`` is the command name a Result carries
("deploy", "migrate up", "tokens create"), and ``gated`` says whether the target environment has
``promote_from``. It is to be called at the api boundary, with the role taken from the caller's
token (``Caller.from_token``), before anything is written: the server's boundary
(``operations/boundary.run_operation``) calls it for every operation of a token caller, so the
check runs where an agent cannot skip it.

The rules follow issue 9 ("an agent token may deploy, verify and roll back non-gated
environments and request promotions"):

- In any environment an agent may read (status, history, logs, report, backups, migrate status,
  lint and rehearse, which only touch a copy), request a promotion (``promote`` without
  ``--approve``), run recovery, start the server or ask for its status, and turn the
  maintenance page on or off (as on Heroku, a collaborator's action).
- In a non-gated environment it may also deploy, verify, roll back, migrate up/down, back up,
  restore, restart, scale workers, set and unset variables (``env set|unset``) and ``run``
  one-off commands; ``env list`` it may run anywhere (secrets show as ``***`` to everyone).
- It may never approve or reject a promotion, pass ``--force``, ``--approve`` or
  ``--discard-writes``, ``protect``, stop the server (that stops every environment), or create
  or revoke tokens.
- Anything not in these tables is refused to an agent: a new operation is a person's until a
  rule here says otherwise.

Rollback in a gated environment (issue 13): an agent may make a code-only rollback to the
release promoted before (no ``--to``: the safe direction, nothing new arrives); ``--to``,
``--restore-db`` and ``--discard-writes`` there are a person's, with a factor. The server's own
watch window rolls back a failing switch without anyone asking.

A person's factor (approve, ``--force``, ``--discard-writes``, ``protect``) is not checked here:
the operations that need it ask for it (``shiplane.operations.decide.person_decision``).
"""

from __future__ import annotations

from collections.abc import Iterable

from shiplane.caller import Caller
from shiplane.errors import RefusedError

__all__ = [
    "AGENT_ANYWHERE",
    "AGENT_NON_GATED",
    "KNOWN_OPERATIONS",
    "PERSON_FLAGS",
    "PERSON_ONLY",
    "check_allowed",
    "gated_operation",
]

# An agent may run these anywhere: they read, ask, or finish what a dead process left.
AGENT_ANYWHERE = frozenset(
    {
        "status",
        "history",
        "logs",
        "report",
        "backups",
        "migrate status",
        "migrate lint",
        "migrate rehearse",
        "promote",  # a request: without --approve it waits for a person in a gated env
        "recover",  # completes or undoes a dead deployment by its recorded plan, nothing new
        "init",  # writes shiplane.toml in the caller's own working tree
        "server start",
        "server status",
        "tokens list",  # ids, roles and labels; never a secret
        "env list",  # names and plain values; a secret shows as *** to everyone
        "approvers list",  # names and factor kinds; never a verifier
        "challenge",  # a nonce to sign: grants nothing without an approver's key
        # As on Heroku (maintenance:on is a collaborator's action): the page changes no code,
        # data or config, and `off` undoes it (shiplane.operations.maintenance).
        "maintenance on",
        "maintenance off",
        "notify test",  # a test message to the configured receivers; changes nothing
    }
)

# An agent may run these only where no promotion gate stands.
AGENT_NON_GATED = frozenset(
    {
        "deploy",
        "verify",  # a verdict in a gated env is evidence for promoting further: not an agent's
        "rollback",
        "migrate up",
        "migrate down",
        "backup",  # rotation prunes old backups: in a gated env, a person's call
        "restore",
        # What a gated environment's processes see and run is a person's decision: a variable
        # can change what the app does as much as a deploy, and a one-off command can write
        # anything to the database.
        "env set",
        "env unset",
        "restart",
        "scale",  # how many workers run changes what a gated env does: a person's there
        "run",
    }
)

# Only a person: deciding for the gate, touching credentials, or stopping every environment.
PERSON_ONLY = frozenset(
    {
        "approve",
        "reject",
        "protect",
        "server stop",
        "tokens create",
        "tokens revoke",
        "approvers add",
        "approvers remove",
        "state restore",  # brings history back: a person's decision, with a factor
        "recover resolve",  # says a failed undo was fixed by hand
    }
)

# Flags that turn an allowed operation into a person's decision, wherever they appear.
PERSON_FLAGS = frozenset({"--force", "--approve", "--discard-writes", "--restore-db"})

KNOWN_OPERATIONS = AGENT_ANYWHERE | AGENT_NON_GATED | PERSON_ONLY


def check_allowed(
    caller: Caller,
    operation: str,
    gated: bool,
    *,
    flags: Iterable[str] = (),
    env: str | None = None,
    code_only_rollback: bool = False,
) -> None:
    """Refuse (RefusedError, exit 6) what ``caller``'s role may not do; ``flags`` are the
    person-only options given (``--force``...), ``env`` only names the environment in the
    message. ``code_only_rollback``: a rollback to the previous release, without --to."""
    if caller.role == "person":
        return
    command = _command_line(operation, env)
    person_flags = sorted(set(flags) & PERSON_FLAGS)
    if person_flags:
        flag = person_flags[0]
        raise _refused(
            caller,
            f"`{command} {flag}`: {flag} is a person's decision",
            _flag_next_action(operation, flag, env),
        )
    if operation in AGENT_ANYWHERE:
        return
    if operation in AGENT_NON_GATED:
        if not gated:
            return
        if operation == "rollback" and code_only_rollback:
            return  # back to the release promoted before: the safe direction
        gated_env = f"gated environment {env}" if env else "a gated environment"
        next_action = (
            f"shiplane promote {env or 'ENV'} (a request a person approves)"
            if operation == "deploy"
            else f"ask a person to run `{command}` with a person token"
        )
        raise _refused(caller, f"`{operation}` in {gated_env}", next_action)
    why = "" if operation in PERSON_ONLY else ", which no agent rule allows"
    raise _refused(caller, f"`{command}`{why}", f"ask a person to run `{command}`")


def gated_operation(operation: str, gated: bool, *, flags: Iterable[str] = ()) -> bool:
    """Whether a role rule or the promotion gate decides this request: what an agent may not
    do (a person's operation or flag, a write in a gated environment) and a promotion into a
    gated environment. Its result says how binding that decision is (shiplane.protection)."""
    if set(flags) & PERSON_FLAGS or operation in PERSON_ONLY:
        return True
    return gated and (operation in AGENT_NON_GATED or operation == "promote")


def _command_line(operation: str, env: str | None) -> str:
    """What the person would type: the env goes before a migrate action (`migrate prod up`)."""
    if env is None:
        return f"shiplane {operation}"
    group, _, action = operation.partition(" ")
    if group == "migrate" and action:
        return f"shiplane migrate {env} {action}"
    return f"shiplane {operation} {env}"


def _refused(caller: Caller, what: str, next_action: str) -> RefusedError:
    return RefusedError(
        f"role agent ({caller.label}) may not run {what}",
        step="policy",
        next_action=next_action,
    )


def _flag_next_action(operation: str, flag: str, env: str | None) -> str:
    if operation == "promote" and flag == "--approve":
        return f"shiplane promote {env or 'ENV'} without --approve; a person approves the request"
    return f"ask a person to run it with {flag}"
