"""Kept variables: key rules, KEY=VALUE parsing, the store, and how they merge over
shiplane.toml (kept wins; secrets stay secrets); the restart plan's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from shiplane.config.loader import EnvSettings, load_config
from shiplane.errors import ConfigError
from shiplane.operations.envvars import check_key, parse_assignments
from shiplane.operations.settings import settings_for, with_kept
from shiplane.pipeline.plans import plan, step_classes
from shiplane.pipeline.steps_rollback import RestartTargetStep
from shiplane.state.db import StateDB
from shiplane.state.envvars import EnvVar, EnvVarStore


@pytest.fixture
def db(tmp_path: Path) -> StateDB:
    return StateDB(tmp_path / "state.db")


@pytest.mark.parametrize("key", ["GREETING", "_X", "API_KEY_2"])
def test_good_keys(key: str) -> None:
    check_key(key)


@pytest.mark.parametrize(
    "key", ["greeting", "2X", "A-B", "", "PORT", "DATABASE_URL", "SHIPLANE_ENV", "SHIPLANE_"]
)
def test_bad_keys_name_the_key(key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_key(key)
    assert refused.value.exit_code == 64 and repr(key) in refused.value.message


def test_assignments_keep_equals_and_empty_values() -> None:
    assert parse_assignments(["A=b=c", "B="]) == {"A": "b=c", "B": ""}
    with pytest.raises(ConfigError, match="no variable"):
        parse_assignments([])
    with pytest.raises(ConfigError) as secret:
        parse_assignments(["A=1", "topsecretvalue"], secret=True)
    assert "topsecretvalue" not in secret.value.message and "argument 2" in secret.value.message


def test_store_set_unset_and_put_back(db: StateDB) -> None:
    store = EnvVarStore(db)
    store.set("dev", {"A": "1", "B": "2"}, secret=False)
    store.set("dev", {"B": "hidden"}, secret=True)  # the flag follows the latest set
    store.set("prod", {"A": "p"}, secret=False)
    snapshot = store.all("dev")
    assert snapshot == [EnvVar("A", "1", False), EnvVar("B", "hidden", True)]
    assert store.unset("dev", ["A", "NOPE"]) == ["A"]
    store.replace_all("dev", snapshot)
    assert store.all("dev") == snapshot and store.all("prod") == [EnvVar("A", "p", False)]


def test_kept_wins_and_secrets_stay_secret(db: StateDB) -> None:
    settings = EnvSettings(
        name="dev",
        env_config=None,  # type: ignore[arg-type]  # with_kept does not read it
        database_url=None,
        variables={"MODE": "config", "PLAIN_TO_SECRET": "config"},
        secrets={"FILE_SECRET": "from-file", "FILE_TO_PLAIN": "from-file"},
        env_file=None,
    )
    store = EnvVarStore(db)
    store.set("dev", {"MODE": "kept", "FILE_TO_PLAIN": "now-plain"}, secret=False)
    store.set("dev", {"PLAIN_TO_SECRET": "now-secret-value"}, secret=True)
    merged = with_kept(settings, db)
    assert merged.variables == {"MODE": "kept", "FILE_TO_PLAIN": "now-plain"}
    assert merged.secrets == {"FILE_SECRET": "from-file", "PLAIN_TO_SECRET": "now-secret-value"}
    assert merged.redactor()("x now-secret-value y") == "x *** y"


def test_settings_for_reads_the_config(tmp_path: Path, db: StateDB) -> None:
    config = tmp_path / "shiplane.toml"
    config.write_text(
        '[app]\nname = "x"\nrun = "true"\n\n[environments.dev]\nbranch = "dev"\nport = 8001\n'
        'env = { MODE = "config" }\n'
    )
    EnvVarStore(db).set("dev", {"EXTRA": "1"}, secret=False)
    assert settings_for(load_config(config), db, "dev").variables == {
        "MODE": "config",
        "EXTRA": "1",
    }


def test_restart_plan_starts_the_serving_release_again() -> None:
    names = [step.name for step in plan("restart")]
    assert names == [
        "lock",
        "target",
        "start",
        "health",
        "switch",
        "smoke",
        "workers",
        "drain",
        "record",
    ]
    # Recovery resumes a restart with its own plan, and its target is the serving release.
    assert step_classes("restart")["target"] is RestartTargetStep
    assert [s.name for s in plan("restart", frozenset())] == [*names[:4], "workers", "record"]
