"""`shiplane maintenance ENV on|off`: the env's front door answers every request with a 503
maintenance page (``Retry-After``), but ``/_deploy/health`` and ``/_deploy/version``, until
it is turned off.

The switch is recorded in state.db first (``shiplane.state.maintenance``: who, when; the
history) and then told to the env's front door, so it outlives the door: a deploy that opens
a new door, or a server restart, finds it on and keeps it on. A deploy during maintenance
still checks the new release through the front door (its checks carry the bypass) and says
``"maintenance": true`` in its JSON.

Who may: as on Heroku, where ``heroku maintenance:on`` is an ordinary collaborator's action,
any caller, an agent too and in a gated environment too (``shiplane.policy``). It changes no
code, data or configuration and is undone by ``off``; keeping an agent from taking the site
down for planned work would only push it towards worse ways of doing so.
"""

from __future__ import annotations

from shiplane.config.loader import env_settings
from shiplane.errors import ConfigError
from shiplane.operations.session import Session
from shiplane.results import Result
from shiplane.state.maintenance import MaintenanceStore

STATES = ("on", "off")


def check_maintenance(env: str, state: str) -> None:
    """Before anything is written (the boundary has named an unknown env already)."""
    if state not in STATES:
        raise ConfigError(
            f"maintenance {env} {state!r}: the state must be on or off",
            step="usage",
            next_action=f"shiplane maintenance {env} on   (or off)",
        )


def maintenance(session: Session, env: str, state: str) -> Result:
    enabled = state == "on"
    store = MaintenanceStore(session.db)
    before = store.current(env)
    after = store.set(env, enabled, session.caller.label)
    port = env_settings(session.loaded, env).env_config.port
    serving = session.target.traffic(env, port).maintenance(enabled, after.bypass)
    result = Result(command=f"maintenance {state}", env=env)
    result.data.update(
        maintenance=after.to_dict(),
        changed=before.enabled != enabled,
        # False: no front door is open for env yet; the first deploy opens it in this state.
        front_door=serving,
        next_action=f"shiplane maintenance {env} off" if enabled else None,
    )
    return result
