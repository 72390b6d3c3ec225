"""A person's factor, verified as the server does: real scrypt, real ssh-keygen signatures over
single-use challenges, real TOTP codes; replays refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from shiplane.cli.factor import sign_challenge
from shiplane.gate import challenges
from shiplane.gate.approvers import ApproverStore, hash_passphrase
from shiplane.gate.challenges import Binding
from shiplane.gate.factors import FactorRefused, verify
from shiplane.gate.pins import compare
from shiplane.state.db import StateDB
from tests.support.approvers import ssh_key

APPROVE = Binding("approve", "prod", "p-1", "a" * 40)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    state = StateDB(tmp_path / "host.db")
    yield state
    state.close()


def test_passphrase_is_stored_as_scrypt_and_checked(db: StateDB, tmp_path: Path) -> None:
    ApproverStore(db).add("alice", "passphrase", hash_passphrase("correct horse battery"), "t")
    stored = json.dumps([dict(r) for r in db.conn.execute("SELECT * FROM approvers")])
    assert "correct horse" not in stored and "scrypt$" in stored
    signers = tmp_path / "allowed_signers"
    factor = {"kind": "passphrase", "approver": "alice", "passphrase": "correct horse battery"}
    assert verify(db, factor, APPROVE, enforced=False, signers=signers) == "alice"
    for wrong in ({**factor, "passphrase": "nope"}, {**factor, "approver": "bob"}, None):
        with pytest.raises(FactorRefused) as refused:
            verify(db, wrong, APPROVE, enforced=False, signers=signers)
        assert refused.value.exit_code == 6 and "correct horse" not in str(refused.value)


def test_an_ssh_signature_is_bound_to_its_challenge_and_good_once(
    db: StateDB, tmp_path: Path
) -> None:
    key = ssh_key(tmp_path)
    ApproverStore(db).add("alice", "ssh", key.with_suffix(".pub").read_text().strip(), "t")
    signers = tmp_path / "allowed_signers"

    def signed(binding: Binding) -> dict[str, str]:
        nonce, text = challenges.issue(db, binding)
        return {"kind": "ssh", "approver": "alice", "nonce": nonce,
                "signature": sign_challenge(key, text)}  # fmt: skip

    factor = signed(APPROVE)
    assert verify(db, factor, APPROVE, enforced=False, signers=signers) == "alice"
    with pytest.raises(FactorRefused):  # replayed
        verify(db, factor, APPROVE, enforced=False, signers=signers)
    other = signed(APPROVE)
    with pytest.raises(FactorRefused):  # signed for p-1, presented for p-2
        verify(db, other, Binding("approve", "prod", "p-2", "a" * 40), enforced=False,
               signers=signers)  # fmt: skip
    forged = {**signed(APPROVE), "signature": other["signature"]}
    with pytest.raises(FactorRefused):  # a signature over another nonce
        verify(db, forged, APPROVE, enforced=False, signers=signers)
    intruder = ssh_key(tmp_path, "mallory")
    nonce, text = challenges.issue(db, APPROVE)
    stolen = {"kind": "ssh", "approver": "alice", "nonce": nonce,
              "signature": sign_challenge(intruder, text)}  # fmt: skip
    with pytest.raises(FactorRefused):  # a key nobody enrolled
        verify(db, stolen, APPROVE, enforced=False, signers=signers)


def test_totp_only_in_enforced_mode_and_each_code_once(db: StateDB, tmp_path: Path) -> None:
    secret = pyotp.random_base32()
    ApproverStore(db).add("alice", "totp", secret, "t")
    signers = tmp_path / "allowed_signers"
    code = pyotp.TOTP(secret).at(time.time())
    factor = {"kind": "totp", "approver": "alice", "code": code}
    with pytest.raises(FactorRefused) as single_user:
        verify(db, factor, APPROVE, enforced=False, signers=signers)
    assert "enforced mode" in str(single_user.value)
    assert verify(db, factor, APPROVE, enforced=True, signers=signers) == "alice"
    with pytest.raises(FactorRefused):
        verify(db, factor, APPROVE, enforced=True, signers=signers)


def test_pins_sort_changes_into_loosening_and_tightening() -> None:
    pinned = {
        "promote_from": "dev", "requires_approval": True, "branch": "main", "port": 8000,
        "database_url": "postgresql://u:${P}@db/x", "backup": False,
        "environments": {"dev": "dev", "prod": "main"}, "checks": {"home": "1", "api": "2"},
    }  # fmt: skip
    same = compare(pinned, dict(pinned))
    assert (same.loosened, same.tightened) == ([], [])
    looser = {**pinned, "promote_from": None, "requires_approval": False,
              "checks": {"home": "1"}, "environments": {"dev": "dev", "prod": "main",
                                                       "hotfix": "main"}}  # fmt: skip
    loosened = compare(pinned, looser).loosened
    assert any("promote_from" in line for line in loosened)
    assert any("requires_approval true -> false" in line for line in loosened)
    assert any("removed: api" in line for line in loosened)
    assert any("hotfix added" in line for line in loosened)
    tighter = {**pinned, "backup": True, "checks": {"home": "1", "api": "2", "new": "3"},
               "environments": {"dev": "dev", "prod": "main", "qa": "qa"}}  # fmt: skip
    changes = compare(pinned, tighter)
    assert changes.loosened == [] and len(changes.tightened) == 3
    moved = compare(pinned, {**pinned, "database_url": "postgresql://u:${P}@evil/x"})
    assert moved.loosened and "${P}" not in moved.loosened[0]


def test_less_https_loosens_the_pin_new_certificate_files_do_not() -> None:
    from shiplane.gate.pins import compare

    base = {"promote_from": "dev", "branch": "main", "environments": {}, "checks": {}}
    tls = {"cert": "a.pem", "key": "a.key", "redirect_http": True, "hsts": 31536000}
    pinned = {**base, "tls": tls}
    renewed = compare(pinned, {**base, "tls": {**tls, "cert": "b.pem", "key": "b.key"}})
    assert renewed.loosened == [] and renewed.tightened == ["tls cert, key changed"]
    dropped = compare(pinned, {**base, "tls": None})
    assert dropped.loosened == ["tls removed"]
    weaker = compare(pinned, {**base, "tls": {**tls, "redirect_http": False, "hsts": False}})
    assert weaker.loosened == ["tls.redirect_http true -> false", "tls.hsts 31536000 -> False"]
    older = compare(base, {**base, "tls": None})  # a pin from before TLS was pinned
    assert older.loosened == [] and older.tightened == []


def test_a_weaker_watch_loosens_the_pin_a_stronger_one_tightens_it() -> None:
    """The watch that would roll a bad prod version back is part of prod's protection: turned
    off, shortened or made more tolerant is a loosening; an older pin without it takes it next."""
    watch = {"seconds": 60.0, "failed_probes": 3, "min_requests": 20, "error_rate": 0.1}
    base = {
        "promote_from": "dev", "requires_approval": False, "branch": "main", "port": 8000,
        "database_url": "sqlite:///x.db", "backup": True,
        "environments": {"dev": "dev", "prod": "main"}, "checks": {},
    }  # fmt: skip
    pinned = {**base, "watch": watch}
    for key, weaker in (("seconds", 0.0), ("failed_probes", 10), ("min_requests", 1000),
                        ("error_rate", 0.9)):  # fmt: skip
        changes = compare(pinned, {**base, "watch": {**watch, key: weaker}})
        assert len(changes.loosened) == 1 and changes.tightened == [], (key, changes)
    assert compare(pinned, {**base, "watch": {**watch, "seconds": 0.0}}).loosened == [
        "deploy.watch 60 -> 0"
    ]
    stronger = {"seconds": 120.0, "failed_probes": 2, "min_requests": 10, "error_rate": 0.05}
    changes = compare(pinned, {**base, "watch": stronger})
    assert changes.loosened == [] and len(changes.tightened) == 4
    older = compare(base, {**base, "watch": {**watch, "seconds": 0.0}})
    assert older.loosened == []  # a pin from before the watch was pinned
