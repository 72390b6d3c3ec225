"""The ``tls`` table of an environment: HTTPS for its front door.

    [environments.prod]
    domains = ["shop.example.com"]
    tls = { acme = true, email = "ops@example.com" }             # Let's Encrypt, HTTP-01
    tls = { cert = "/etc/ssl/shop.pem", key = "/etc/ssl/shop.key" }  # your own certificate
    tls = { acme = true, email = "...", redirect_http = true, hsts = 31536000 }

The HTTPS port is the port of ``listen`` (shared by ``domains`` with other environments); plain
HTTP is served on ``http_port`` (default 80) on the same address. Relative paths (cert, key,
ca_bundle) are relative to shiplane.toml; the client sends those files' text with the config,
and the server keeps its own copy (0600), as it does for env files.

Either ACME obtains and renews the certificates, or the user gives a chain and key; never both.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
HSTS_YEAR = 31_536_000
ACME_ONLY = ("email", "directory", "ca_bundle", "renew_before_days", "renew_fraction")


class TlsConfig(BaseModel):
    # The same strictness as config/models.py's Strict (not imported: models.py will import
    # this module when it wires ``tls`` into an environment).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    acme: bool = Field(
        default=False,
        description="Obtain and renew certificates over ACME; the front door answers the"
        " HTTP-01 challenges on its HTTP port, which must be reachable as port 80.",
    )
    email: str | None = Field(
        default=None, description="Contact address of the ACME account (expiry notices)."
    )
    directory: str = Field(
        default=LETS_ENCRYPT,
        description="ACME directory URL (default: Let's Encrypt production; use the staging"
        " URL while trying things out).",
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of CAs that verify the ACME server's own HTTPS (a private or test"
        " CA); default: the system's trust store.",
    )
    cert: str | None = Field(
        default=None,
        description="Your own certificate: PEM file with the certificate and its intermediates.",
    )
    key: str | None = Field(default=None, description="The PEM private key of ``cert``.")
    renew_before_days: float = Field(
        default=30.0,
        gt=0,
        description="Renew when fewer days than this remain (or renew_fraction, if sooner).",
    )
    renew_fraction: float = Field(
        default=1 / 3,
        gt=0,
        lt=1,
        description="Renew when less than this fraction of the certificate's lifetime remains"
        " (or renew_before_days, if sooner).",
    )
    redirect_http: bool = Field(
        default=True,
        description="Answer plain-HTTP requests with a 308 redirect to HTTPS (ACME challenges"
        " excepted).",
    )
    http_port: int = Field(
        default=80,
        ge=1,
        le=65535,
        description="Plain-HTTP port on the listen address: answers the ACME HTTP-01"
        " challenges, then redirects to HTTPS (redirect_http) or serves as usual.",
    )
    hsts: bool | int = Field(
        default=False,
        description="Send Strict-Transport-Security on HTTPS answers: false (off), true (one"
        " year), or max-age in seconds (0 tells browsers to forget it).",
    )

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (value.count("@") != 1 or any(c.isspace() for c in value)):
            raise ValueError('must be one e-mail address, e.g. "ops@example.com"')
        return value

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if not value.startswith("https://") or len(value) <= len("https://"):
            raise ValueError(
                f"ACME directories are served over HTTPS: use a URL such as {LETS_ENCRYPT!r}"
            )
        return value

    @field_validator("ca_bundle", "cert", "key")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError('must be a file path, e.g. "/etc/ssl/site.pem"')
        return value

    @field_validator("hsts", mode="before")
    @classmethod
    def _hsts(cls, value: Any) -> Any:
        # Before the union's own checks, which would report one error per member.
        if not isinstance(value, bool | int) or (not isinstance(value, bool) and value < 0):
            raise ValueError(
                f"use false (off), true (max-age {HSTS_YEAR}) or max-age in seconds (0 or more)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        # Checked on the raw table so the message quotes what the user wrote.
        if not isinstance(data, dict) or not isinstance(data.get("acme", False), bool):
            return data  # not a table, or acme is no bool: the field's own error says so
        acme = data.get("acme") is True
        own = [name for name in ("cert", "key") if data.get(name) is not None]
        if acme and own:
            raise ValueError(
                "acme = true and cert/key both given: keep acme = true to have certificates"
                " obtained, or cert and key to serve your own, not both"
            )
        if not acme and not own:
            raise ValueError(
                'no certificate source: add acme = true (with email = "you@example.com"),'
                ' or cert = "chain.pem" and key = "key.pem"'
            )
        if own and len(own) == 1:
            missing = "key" if own == ["cert"] else "cert"
            raise ValueError(f"{own[0]} needs {missing}: give both files of the pair")
        if not acme:
            stray = [name for name in ACME_ONLY if name in data]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} only apply to ACME: remove them, or use acme = true"
                    " instead of cert and key"
                )
        return data

    @property
    def hsts_max_age(self) -> int | None:
        """Seconds for Strict-Transport-Security; None: send no header."""
        if self.hsts is True:
            return HSTS_YEAR
        if self.hsts is False:
            return None
        return self.hsts
