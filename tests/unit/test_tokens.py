"""The token store on a real state.db: only hashes on disk, verify refuses wrong and revoked
tokens, list never shows a secret; and the Caller a token makes records its true role."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shiplane import api
from shiplane.caller import Caller, Role
from shiplane.state.db import StateDB
from shiplane.state.tokens import TokenRecord, TokenStore


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    state = StateDB(tmp_path / "state.db")
    try:
        yield state
    finally:
        state.close()


def _secret(plaintext: str) -> str:
    return plaintext.split("_", 2)[2]


def test_create_returns_a_token_that_verifies(db: StateDB) -> None:
    store = TokenStore(db)
    token_id, plaintext = store.create("agent", "ci-bot")
    assert plaintext.startswith(f"shp_{token_id}_")
    assert len(_secret(plaintext)) >= 43  # token_urlsafe(32): 256 bits
    record = store.verify(plaintext)
    assert record is not None
    assert (record.id, record.role, record.label) == (token_id, "agent", "ci-bot")
    assert record.last_used_at is not None and not record.revoked


def test_only_the_hash_reaches_the_disk(db: StateDB, tmp_path: Path) -> None:
    store = TokenStore(db)
    secrets = [_secret(store.create(role, None)[1]) for role in ("agent", "person")]
    digests = [row[0] for row in db.conn.execute("SELECT secret_sha256 FROM tokens")]
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # WAL pages into the main file
    db.close()
    on_disk = b"".join(
        path.read_bytes() for path in tmp_path.iterdir() if path.name.startswith("state.db")
    )
    for secret, digest in zip(secrets, digests, strict=True):
        assert secret.encode() not in on_disk
        assert digest.encode() in on_disk  # the bytes read are the ones the rows live in
    reopened = StateDB(tmp_path / "state.db")
    try:
        rows = reopened.conn.execute("SELECT * FROM tokens").fetchall()
        assert len(rows) == 2
        assert all(secret not in str(tuple(row)) for row in rows for secret in secrets)
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: t.replace("shp_", "xyz_", 1),  # wrong prefix
        lambda t: "shp_000000000000_" + _secret(t),  # unknown id, right secret
        lambda t: t[: len(t) // 2],  # truncated
        lambda t: "",
        lambda t: "shp__",
        lambda t: t + "x" * 300,  # absurdly long
    ],
)
def test_verify_refuses_a_wrong_token(db: StateDB, mangle: Callable[[str], str]) -> None:
    store = TokenStore(db)
    _token_id, plaintext = store.create("person", "ana")
    assert store.verify(mangle(plaintext)) is None


def test_revoke_makes_verify_fail_and_keeps_the_first_time(db: StateDB) -> None:
    store = TokenStore(db)
    token_id, plaintext = store.create("agent", None)
    other_id, other = store.create("agent", None)
    revoked = store.revoke(token_id)
    assert revoked is not None and revoked.revoked
    assert store.verify(plaintext) is None
    assert store.verify(other) is not None  # revoking one token leaves the others alone
    again = store.revoke(token_id)
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert store.revoke("nosuchtoken") is None
    assert other_id != token_id


def test_list_shows_no_hash_or_secret(db: StateDB) -> None:
    store = TokenStore(db)
    made = [store.create("agent", "bot"), store.create("person", "ana")]
    store.revoke(made[0][0])
    listed = store.list()
    assert [r.id for r in listed] == [token_id for token_id, _ in made]
    assert [r.revoked for r in listed] == [True, False]
    hashes = [row[0] for row in db.conn.execute("SELECT secret_sha256 FROM tokens")]
    text = json.dumps([r.to_dict() for r in listed])
    for (_token_id, plaintext), digest in zip(made, hashes, strict=True):
        assert _secret(plaintext) not in text
        assert digest not in text
    assert set(listed[0].to_dict()) == {
        "id",
        "role",
        "label",
        "created_at",
        "revoked_at",
        "last_used_at",
        "revoked",
        "uid",
    }


def test_the_role_check_constraint_holds(db: StateDB) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        TokenStore(db).create("admin", None)  # type: ignore[arg-type]


def _record(role: Role, label: str | None = None) -> TokenRecord:
    return TokenRecord(
        id="abc123", role=role, label=label, created_at="t", revoked_at=None, last_used_at=None
    )


@pytest.mark.parametrize(
    ("role", "actor_label", "token_label", "recorded"),
    [
        ("agent", "person:alice", None, "agent:alice"),  # the label cannot claim a role
        ("agent", "agent:bot", None, "agent:bot"),
        ("agent", "person:agent:x", None, "agent:x"),
        ("agent", "bot", None, "agent:bot"),
        ("agent", None, "ci-bot", "agent:ci-bot"),
        ("agent", "  ", None, "agent:abc123"),
        ("person", "agent:ana", None, "person:ana"),
        ("person", None, "person:ana", "person:ana"),
        ("person", "ana", None, "person:ana"),
    ],
)
def test_caller_role_comes_from_the_token(
    role: Role, actor_label: str | None, token_label: str | None, recorded: str
) -> None:
    caller = Caller.from_token(_record(role, token_label), actor_label)
    assert caller.role == role
    assert caller.label == recorded
    assert caller.token_id == "abc123"
    assert caller.is_agent == (role == "agent")


def test_a_token_is_not_a_persons_factor() -> None:
    assert not Caller.from_token(_record("person"), "ana").person_verified
    assert Caller.from_token(_record("person"), "ana", person_verified=True).person_verified
    assert not Caller.from_token(_record("agent"), "x", person_verified=True).person_verified


CONFIG = '[app]\nname = "x"\nrun = "true"\n\n[environments.dev]\nbranch = "dev"\nport = 8001\n'


def test_the_operations_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """create shows the token once; list and revoke never do; a revoked token stops verifying."""
    monkeypatch.setenv("SHIPLANE_HOME", str(tmp_path / "home"))
    config = tmp_path / "shiplane.toml"
    config.write_text(CONFIG)
    person = Caller.from_actor("person:ana")
    # The first token needs none (single-user mode); from then on every call presents one.
    first = api.tokens_create(person, "person", config_path=config)
    assert first.ok, first.to_dict()
    person_token = first.data["token"]
    assert not api.tokens_list(person, config_path=config).ok  # no token: refused now
    created = api.call(
        "tokens_create",
        person,
        config_path=config,
        token=person_token,
        role="agent",
        label=" ci-bot ",
    )
    assert created.ok, created.to_dict()
    plaintext = created.data["token"]
    assert (created.data["role"], created.data["label"]) == ("agent", "ci-bot")
    assert created.warnings  # "shown once"
    listed = api.call(
        "tokens_list", Caller.from_actor("agent:bot"), config_path=config, token=plaintext
    )
    assert listed.ok and _secret(plaintext) not in json.dumps(listed.to_dict())
    assert [t["id"] for t in listed.data["tokens"]] == [first.data["id"], created.data["id"]]
    state = StateDB(tmp_path / "home" / "host.db")
    try:
        assert TokenStore(state).verify(plaintext) is not None
        revoked = api.call(
            "tokens_revoke",
            person,
            config_path=config,
            token=person_token,
            token_id=created.data["id"],
        )
        assert revoked.ok and revoked.data["revoked"]["revoked"]
        assert _secret(plaintext) not in json.dumps(revoked.to_dict())
        assert TokenStore(state).verify(plaintext) is None
    finally:
        state.close()


@pytest.mark.parametrize(
    ("role", "label", "token_id"),
    [
        ("admin", None, None),
        ("agent", "", None),
        ("agent", "a\nb", None),
        ("agent", "x" * 65, None),
        ("agent", None, "nosuchtoken"),
    ],
)
def test_usage_errors_exit_64(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    role: str,
    label: str | None,
    token_id: str | None,
) -> None:
    monkeypatch.setenv("SHIPLANE_HOME", str(tmp_path / "home"))
    config = tmp_path / "shiplane.toml"
    config.write_text(CONFIG)
    person = Caller.from_actor("person:ana")
    result = (
        api.tokens_revoke(person, token_id, config_path=config)
        if token_id
        else api.tokens_create(person, role, label=label, config_path=config)
    )
    assert result.exit_code == 64, result.to_dict()
    assert result.error is not None and result.error["next_action"]
