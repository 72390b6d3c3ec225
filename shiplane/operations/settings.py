"""One environment's settings as the server applies them: shiplane.toml's, with the variables
the server keeps (`shiplane env set`) merged over them."""

from __future__ import annotations

import dataclasses

from shiplane.config.loader import EnvSettings, LoadedConfig, env_settings
from shiplane.state.db import StateDB
from shiplane.state.envvars import kept_layers


def with_kept(settings: EnvSettings, db: StateDB) -> EnvSettings:
    """``settings`` with the kept variables over them: a kept key wins over the same key in the
    config's ``env`` table and in its env file, whichever kind (plain or secret) either is."""
    plain, secret = kept_layers(db, settings.name)
    kept = plain.keys() | secret.keys()
    return dataclasses.replace(
        settings,
        variables={
            **{k: v for k, v in settings.variables.items() if k not in kept},
            **plain,
        },
        secrets={**{k: v for k, v in settings.secrets.items() if k not in kept}, **secret},
    )


def settings_for(loaded: LoadedConfig, db: StateDB, env: str) -> EnvSettings:
    return with_kept(env_settings(loaded, env), db)
