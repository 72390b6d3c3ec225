"""Declarative checks: ``[[verify.check]]`` in shiplane.toml or a separate checks file.

Every check has a ``name``, a ``kind``, a ``group`` (``smoke`` checks run again through the
front door after the switch) and ``allow_in``: environments where a check that writes may run.
Without ``allow_in``, a writing check runs only in environments without ``promote_from``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class CheckBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

    name: str = Field(description="Unique name; shown in reports.")
    group: str = Field(default="default", description="`--only GROUP`; `smoke` runs after switch.")
    allow_in: list[str] | None = Field(
        default=None, description="Envs where this check may write (default: ungated envs)."
    )

    @property
    def writes(self) -> bool:
        return False


class HttpCheck(CheckBase):
    kind: Literal["http"]
    method: str = "GET"
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    json_body: Any = Field(default=None, alias="json")
    status: int = 200
    expect_json: Any = Field(default=None, description="The response JSON contains this subset.")
    jsonpath: dict[str, Any] = Field(default_factory=dict, description="JSONPath -> value.")
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    max_latency_ms: float | None = Field(default=None, gt=0)
    retries: int = Field(default=0, ge=0)
    capture: dict[str, str] = Field(
        default_factory=dict,
        description="name -> JSONPath; use as ${name} in later checks (path, headers, body,"
        " expectations). ${uuid}, ${random} and ${timestamp} are fresh for each run.",
    )

    @property
    def writes(self) -> bool:
        return self.method.upper() not in SAFE_METHODS


class OpenApiCheck(CheckBase):
    kind: Literal["openapi"]
    path: str = "/openapi.json"
    exclude: list[str] = Field(default_factory=list, description="Paths not to call.")


class SqlCheck(CheckBase):
    kind: Literal["sql"]
    query: str
    expect: Any = Field(description="A scalar for one value, or a list of rows ([] for none).")


class SchemaCheck(CheckBase):
    kind: Literal["schema"]
    tables: dict[str, list[str]] = Field(default_factory=dict, description="table -> columns")
    migrations_match: bool = Field(default=True, description="Applied == the release's files.")


class VersionCheck(CheckBase):
    kind: Literal["version"]


class DiffCheck(CheckBase):
    kind: Literal["diff"]
    paths: list[str]
    expect_changed: list[str] = Field(
        default_factory=list, description="Paths whose status or JSON shape may change."
    )


class TestsCheck(CheckBase):
    kind: Literal["tests"]
    command: str
    timeout: float = Field(default=600.0, gt=0)
    coverage_min: float | None = Field(default=None, ge=0, le=100)
    coverage_file: str = "coverage.json"

    @property
    def writes(self) -> bool:
        return True  # an app's own suites may well create data


class LoadCheck(CheckBase):
    kind: Literal["load"]
    path: str
    requests: int = Field(default=100, ge=1)
    concurrency: int = Field(default=10, ge=1)
    p95_ms: float | None = Field(default=None, gt=0)
    max_error_rate: float = Field(default=0.0, ge=0, le=1)


Check = Annotated[
    HttpCheck
    | OpenApiCheck
    | SqlCheck
    | SchemaCheck
    | VersionCheck
    | DiffCheck
    | TestsCheck
    | LoadCheck,
    Field(discriminator="kind"),
]


class VerifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    check: list[Check] = Field(default_factory=list, description="[[verify.check]] tables.")
    checks_file: str | None = Field(default=None, description="TOML file with [[check]] tables.")
    max_age: float = Field(default=86400.0, gt=0, description="Seconds a verification counts.")


class ChecksFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    check: list[Check] = Field(default_factory=list)
