"""The ``tls`` table (errors name the key, the value and the fix), the redirect and HSTS helpers,
and the renew policy: pure logic, no network."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pytest
from pydantic import ValidationError

from shiplane.config.loader import describe_validation_error
from shiplane.config.tls import HSTS_YEAR, LETS_ENCRYPT, TlsConfig
from shiplane.frontdoor.acme_client import ChallengeResponder
from shiplane.frontdoor.redirect import hsts_value, https_location, redirect_head
from shiplane.frontdoor.renewal import RenewPolicy
from shiplane.frontdoor.tls import CertificateInfo, covers


def tls(text: str) -> TlsConfig:
    return TlsConfig.model_validate(tomllib.loads(f"tls = {text}")["tls"])


def error(text: str) -> str:
    with pytest.raises(ValidationError) as caught:
        tls(text)
    return describe_validation_error(caught.value)


def test_acme_defaults() -> None:
    config = tls('{ acme = true, email = "ops@example.com" }')
    assert config.directory == LETS_ENCRYPT
    assert config.redirect_http is True
    assert config.hsts_max_age is None
    assert config.renew_before_days == 30.0


def test_own_certificate_and_hsts_forms() -> None:
    config = tls('{ cert = "site.pem", key = "site.key", hsts = true }')
    assert (config.cert, config.key, config.hsts_max_age) == ("site.pem", "site.key", HSTS_YEAR)
    assert tls('{ cert = "a", key = "b", hsts = 600 }').hsts_max_age == 600
    assert tls('{ cert = "a", key = "b", hsts = 0 }').hsts_max_age == 0
    assert tls('{ cert = "a", key = "b", hsts = false }').hsts_max_age is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{ acme = true, emial = 'x@y.z' }", "unknown key 'emial'"),
        ("{ acme = 'yes' }", "acme = 'yes': Input should be a valid boolean"),
        ("{ acme = true, email = 'ops' }", "email = 'ops': must be one e-mail address"),
        (
            "{ acme = true, directory = 'http://ca.example/dir' }",
            "directory = 'http://ca.example/dir': ACME directories are served over HTTPS",
        ),
        ("{ acme = true, cert = 'a.pem', key = 'a.key' }", "not both"),
        ("{ redirect_http = true }", "no certificate source: add acme = true"),
        ("{ cert = 'a.pem' }", "cert needs key"),
        ("{ key = 'a.key' }", "key needs cert"),
        ("{ cert = 'a', key = 'b', email = 'x@y.z' }", "email only apply to ACME: remove them"),
        ("{ cert = 'a', key = 'b', hsts = -1 }", "hsts = -1: use false (off), true"),
        ("{ cert = 'a', key = 'b', hsts = 'on' }", "hsts = 'on': use false (off), true"),
        ("{ cert = ' ', key = 'b' }", "cert = ' ': must be a file path"),
        ("{ acme = true, renew_fraction = 1.5 }", "renew_fraction = 1.5: Input should be less"),
        ("{ acme = true, renew_before_days = 0 }", "renew_before_days = 0: Input should be"),
    ],
)
def test_errors_name_key_value_and_fix(text: str, expected: str) -> None:
    assert expected in error(text)


def test_every_field_is_described() -> None:
    assert all(field.description for field in TlsConfig.model_fields.values())


@pytest.mark.parametrize(
    ("host", "target", "port", "expected"),
    [
        ("shop.example.com", "/cart?id=1", 443, "https://shop.example.com/cart?id=1"),
        (b"Shop.Example.com:80", b"/", 443, "https://shop.example.com/"),
        ("shop.example.com:8080", "/a", 8443, "https://shop.example.com:8443/a"),
        ("shop.example.com", "http://shop.example.com/x?y", 443, "https://shop.example.com/x?y"),
        ("shop.example.com", "*", 443, "https://shop.example.com/"),
        ("[::1]:80", "/", 443, "https://[::1]/"),
        (None, "/", 443, None),
        ("", "/", 443, None),
        ("evil.com\r\nSet-Cookie: x", "/", 443, None),
        ("user@evil.com", "/", 443, None),
        ("shop.example.com", "/a\r\nX: y", 443, None),
    ],
)
def test_https_location(host: Any, target: bytes | str, port: int, expected: str | None) -> None:
    assert https_location(host, target, port) == expected


def test_https_location_only_for_known_names() -> None:
    assert https_location("other.example", "/", known={"shop.example.com"}) is None
    assert https_location("shop.example.com", "/", known={"shop.example.com"}) is not None


def test_redirect_head_and_hsts() -> None:
    head = redirect_head("https://shop.example.com/a", close=True)
    assert head.startswith(b"HTTP/1.1 308 Permanent Redirect\r\n")
    assert b"\r\nLocation: https://shop.example.com/a\r\n" in head
    assert b"Connection: close" in head and head.endswith(b"\r\n\r\n")
    assert hsts_value(HSTS_YEAR) == b"max-age=31536000"
    assert hsts_value(60, include_subdomains=True, preload=True) == (
        b"max-age=60; includeSubDomains; preload"
    )
    with pytest.raises(ValueError):
        hsts_value(-1)


def test_challenge_responder_paths() -> None:
    responder = ChallengeResponder()
    responder.add("tok-1", "tok-1.thumb")
    assert responder.answer("/.well-known/acme-challenge/tok-1") == b"tok-1.thumb"
    assert responder.answer(b"/.well-known/acme-challenge/tok-1?x=1") == b"tok-1.thumb"
    assert responder.answer("/.well-known/acme-challenge/other") is None
    assert responder.owns("/.well-known/acme-challenge/other")
    assert responder.answer("/tok-1") is None and not responder.owns("/tok-1")
    responder.remove("tok-1")
    assert responder.answer("/.well-known/acme-challenge/tok-1") is None


def _info(days: float, left: float) -> CertificateInfo:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    start = now - dt.timedelta(days=days - left)
    return CertificateInfo("a.example", 1, ("a.example",), start, start + dt.timedelta(days=days))


def test_renew_policy_window() -> None:
    policy, now = RenewPolicy(), dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert policy.due(None)
    assert not policy.due(_info(90, 31), now) and policy.due(_info(90, 29), now)
    # A six-day certificate renews with two days left, not every day.
    assert not policy.due(_info(6, 2.5), now) and policy.due(_info(6, 1.9), now)


def test_wildcard_cover() -> None:
    assert covers(("*.example.com",), "a.example.com")
    assert not covers(("*.example.com",), "a.b.example.com")
    assert not covers(("*.com",), "example.com")
    assert not covers(("a.example.com",), "b.example.com")
