"""Pydantic models of ``shiplane.toml``. Unknown keys are errors: a typo must not pass silently."""

from __future__ import annotations

import re
import shlex
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shiplane.config.checks import VerifyConfig
from shiplane.config.encryption import BackupEncryption
from shiplane.config.frontdoor import (
    DEFAULT_LISTEN,
    FrontDoorConfig,
    check_cidrs,
    check_domains,
    check_listen,
    split_listen,
)
from shiplane.config.hosts import parse_host
from shiplane.config.notify import NotifyConfig
from shiplane.config.processes import ProcessesConfig
from shiplane.config.static import check_static
from shiplane.config.tls import TlsConfig
from shiplane.logs_rotate import LogRotation

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# The names shiplane/migrate/registry.py registers (it checks they match on import): a tuple
# because config must not import the engines, which import config.
ENGINE_NAMES = ("shiplane", "alembic", "command", "flask-migrate", "django", "knex")
# The engines that run commands the config spells out; the presets bring their own.
COMMAND_KEYS = ("up", "down", "status")


class Strict(BaseModel):
    # strict: "yes" is not a bool and 5 is not a name; a typo must not pass as a value.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AppConfig(Strict):
    name: str = Field(description="App name; names the deploy root and the server.")
    build: list[str] = Field(default_factory=list, description="Commands run in the release dir.")
    run: str | None = Field(
        default=None,
        description="Command that serves the app; {port} and {host} are replaced by the port and"
        " the address the target wants the app to listen on. An alias of processes.web.",
    )
    health: str = Field(default="/healthz", description="Path that answers 2xx when healthy.")
    stop_timeout: float = Field(default=10.0, gt=0, description="Seconds between TERM and KILL.")
    reuse_build: bool = Field(
        default=True,
        description="The build does not depend on the environment: promote copies the release.",
    )
    python: str | None = Field(
        default=None,
        description="The app's interpreter or virtualenv dir (absolute, or relative to the"
        " release): its bin dir goes first on PATH for migrations. Unset: the build makes the"
        " release's virtualenv from requirements.txt / uv.lock / pyproject.toml, if it has one.",
    )
    static: dict[str, str] = Field(
        default_factory=dict,
        description="Static files the front door serves: URL prefix -> directory in the release,"
        ' e.g. {"/static" = "staticfiles"}. A path naming no file falls through to the app.',
    )
    static_max_age: int = Field(
        default=3600,
        ge=0,
        description="Cache-Control max-age (s) of static files; fingerprinted names"
        " (app.3f2a1b9c.css) are immutable for a year.",
    )

    _static = field_validator("static")(check_static)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("use lowercase letters, digits, '-' or '_', starting with a letter")
        return value

    @field_validator("health")
    @classmethod
    def _health(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be a URL path starting with '/', e.g. \"/healthz\"")
        return value

    @field_validator("run")
    @classmethod
    def _run(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                'must be a command, e.g. "python -m gunicorn -b {host}:{port} app:app"'
            )
        return value


class HealthConfig(Strict):
    interval: float = Field(default=1.0, gt=0, description="Seconds between health polls.")
    timeout: float = Field(
        default=30.0, gt=0, description="Seconds until an instance is unhealthy."
    )
    request_timeout: float = Field(default=5.0, gt=0, description="Seconds per health request.")
    retries: int | None = Field(
        default=None, ge=1, description="Most checks before giving up (default: until timeout)."
    )
    monitor_interval: float = Field(
        default=5.0,
        ge=0.1,
        description="Seconds between the server's probes of what serves, after the deploy:"
        " /_deploy/health and status report what they found.",
    )


class DeployConfig(Strict):
    drain_timeout: float = Field(default=30.0, ge=0, description="Seconds in-flight requests get.")
    releases_kept: int = Field(default=5, ge=1, description="Releases kept per environment.")
    build_timeout: float = Field(default=900.0, gt=0, description="Seconds per build command.")
    watch: float = Field(
        default=60.0,
        ge=0,
        description="Seconds the server watches a new version after its switch, and rolls it"
        " back on its own when it goes bad (0: no watch).",
    )
    watch_failed_probes: int = Field(
        default=3, ge=1, description="Failed health probes in a row that count as bad."
    )
    watch_min_requests: int = Field(
        default=20,
        ge=1,
        description="Requests the new version must have answered before its 5xx rate counts:"
        " a few clients cannot force a rollback.",
    )
    watch_error_rate: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="How far the 5xx rate may rise above the old version's before it is bad"
        " (0.1: ten points).",
    )
    standby: bool = Field(
        default=True,
        description="Keep the previous instance running, unrouted, after a switch (one host):"
        " a rollback to it within standby_ttl is a front-door switch.",
    )
    standby_ttl: float = Field(
        default=900.0, gt=0, description="Seconds a standby instance is kept before it stops."
    )


def _check_database_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise ValueError(
            "use sqlite:///PATH or postgresql://USER:${DB_PASSWORD}@HOST:PORT/NAME"
            " (${NAME} comes from the env file)"
        )
    return value


class DatabaseConfig(Strict):
    url: str | None = Field(
        default=None, description="sqlite:///file.db (relative to shared/) or postgresql://..."
    )
    migrations: str = Field(
        default="migrations", description="Migrations dir (Alembic: the script location)."
    )
    engine: str = Field(
        default="shiplane",
        description="Migration engine: shiplane's own runner, or the app's Alembic environment.",
    )
    alembic_ini: str = Field(default="alembic.ini", description="Alembic config, release-relative.")
    up: str | None = Field(default=None, description="command engine: applies what is pending.")
    down: str | None = Field(
        default=None, description="command engine: reverts to {target}; none = cannot revert."
    )
    status: str | None = Field(
        default=None, description="command engine: prints the applied version(s), one a line."
    )
    hold: bool = Field(
        default=False,
        description="Run every schema-changing deploy inside a front-door hold: new requests"
        " wait (answered late, never failed) while the migration runs and the new release starts,"
        " until the switch. Without it, only migrations the lint finds not backward compatible"
        " (drop, rename, type change, NOT NULL add) are held; set it for engines that cannot"
        " lint (alembic, command, flask-migrate, django, knex).",
    )

    _url = field_validator("url")(_check_database_url)

    @model_validator(mode="after")
    def _commands(self) -> DatabaseConfig:
        given = [key for key in COMMAND_KEYS if getattr(self, key) is not None]
        if self.engine != "command":
            if given:
                key = given[0]
                raise ValueError(
                    f"database.{key} = {getattr(self, key)!r} is only read by engine = "
                    f'"command" (engine is {self.engine!r}); remove it or set engine = "command"'
                )
            return self
        if not self.up or not self.up.strip():
            raise ValueError(
                'database.up is required with engine = "command", e.g. up = "python migrate.py up"'
            )
        if self.down is not None and "{target}" not in self.down:
            raise ValueError(
                f"database.down = {self.down!r} must contain {{target}} (the version to revert"
                ' to), e.g. down = "python migrate.py down {target}"'
            )
        if self.down is not None and not self.status:
            raise ValueError(
                "database.down needs database.status: the version status prints before a deploy"
                ' is the target down reverts to, e.g. status = "python migrate.py current"'
            )
        for key in given:
            try:
                shlex.split(getattr(self, key))
            except ValueError as exc:
                raise ValueError(
                    f"database.{key} = {getattr(self, key)!r}: {exc}; quote it as a shell would"
                ) from None
        return self

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if value not in ENGINE_NAMES:
            raise ValueError(f"unknown migration engine; use one of: {', '.join(ENGINE_NAMES)}")
        return value


class EnvDatabase(Strict):
    url: str | None = Field(default=None, description="Overrides database.url for this env.")
    hold: bool | None = Field(
        default=None, description="Overrides database.hold for this env (default: inherit)."
    )

    _url = field_validator("url")(_check_database_url)


Port = Annotated[int, Field(ge=1, le=65535)]


class Environment(Strict):
    branch: str = Field(description="Git branch this environment deploys.")
    port: Port = Field(description="Port of the environment's front door.")
    database: EnvDatabase = Field(default_factory=EnvDatabase)
    # The TOML key stays `env` (what users write); in code `env` always means a name.
    variables: dict[str, str] = Field(
        default_factory=dict, alias="env", description="Variables for the app."
    )
    env_file: str | None = Field(default=None, description="KEY=VALUE file; values are secrets.")
    backup: bool = Field(default=False, description="Back up the database before every deploy.")
    backup_encryption: BackupEncryption | None = Field(
        default=None, description="Encrypt this env's backups with age (recipient, identity)."
    )
    auto_merge: bool = Field(
        default=False, description="Deploying from another branch merges it into `branch` first."
    )
    releases_kept: int | None = Field(default=None, ge=1)
    promote_from: str | None = Field(
        default=None, description="Gated: new code arrives only by `shiplane promote` from here."
    )
    requires_approval: bool = Field(
        default=False, description="`promote` waits for `shiplane approve ID` by a person."
    )
    rehearse: bool | None = Field(
        default=None,
        description="Rehearse pending migrations on a copy first (default: gated envs).",
    )
    backups_keep: int = Field(default=10, ge=1, description="Backups kept at most.")
    backups_keep_days: float = Field(default=7.0, gt=0, description="Backups older are pruned.")
    server: str | None = Field(
        default=None,
        description="The shiplane server of this environment, over SSH: [user@]host[:port] "
        "(default: this machine's).",
    )

    @field_validator("server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        if value is not None:
            parse_host(value)  # its ValueError names the fix; pydantic adds key and value
        return value

    listen: str = Field(
        default=DEFAULT_LISTEN,
        description='Front door address[:port]; "0.0.0.0:80" exposes it (explicitly). With'
        " domains, a port here is shared by host name (and `port` stays on loopback).",
    )
    domains: list[str] = Field(
        default_factory=list,
        description="Host names this env answers on the listen port it shares with others.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-* headers are kept."
    )
    front_door: FrontDoorConfig = Field(
        default_factory=FrontDoorConfig, description="Front-door timeouts and limits."
    )
    tls: TlsConfig | None = Field(
        default=None,
        description="HTTPS on the shared listen port for `domains`: ACME or your own files.",
    )

    _listen = field_validator("listen")(check_listen)
    _domains = field_validator("domains")(check_domains)
    _trusted = field_validator("trusted_proxies")(check_cidrs)

    @model_validator(mode="after")
    def _listen_port(self) -> Environment:
        _, port = split_listen(self.listen)
        if self.tls is not None:
            self._check_tls(self.tls, port)  # first: its message says what HTTPS needs
        if self.front_door.workers > 1 and (self.domains or self.tls is not None):
            raise ValueError(
                f"front_door.workers = {self.front_door.workers} serves the env's own port only;"
                " with domains or tls keep workers = 1 (or put those behind another env)"
            )
        if port is not None and port != self.port and not self.domains:
            raise ValueError(
                f"listen = {self.listen!r} names port {port} but port = {self.port}; make them"
                " equal, leave the port out, or name `domains` to share that port by host name"
            )
        return self

    def _check_tls(self, tls: TlsConfig, https_port: int | None) -> None:
        # HTTPS is served on the port shared by host name: SNI needs the names, and the env's
        # own `port` stays plain HTTP on loopback for the deploy's checks.
        if not self.domains:
            raise ValueError(
                "tls needs domains: name the host names to serve over HTTPS, e.g. domains ="
                ' ["shop.example.com"]'
            )
        if https_port is None or https_port == self.port:
            raise ValueError(
                f"tls needs the HTTPS port in listen (other than port = {self.port}), e.g."
                ' listen = "0.0.0.0:443"'
            )
        if tls.http_port in (https_port, self.port):
            raise ValueError(
                f"tls.http_port = {tls.http_port} is also the HTTPS port or `port`; plain HTTP"
                " needs a port of its own (default 80)"
            )

    @property
    def gated(self) -> bool:
        """New code arrives only by promotion (the one rule for "gated")."""
        return self.promote_from is not None


class Config(Strict):
    app: AppConfig
    health: HealthConfig = Field(default_factory=HealthConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    environments: dict[str, Environment]
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    processes: ProcessesConfig = Field(default_factory=ProcessesConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)

    @property
    def web_command(self) -> str:
        """The command of the web process: processes.web, or its alias [app] run."""
        command = self.processes.web or self.app.run
        assert command is not None  # _one_web_command
        return command

    @model_validator(mode="after")
    def _one_web_command(self) -> Config:
        if self.app.run is not None and self.processes.web is not None:
            raise ValueError(
                f"app.run = {self.app.run!r} and processes.web = {self.processes.web!r} are"
                " both set: app.run is an alias of processes.web; keep one of them"
            )
        if self.app.run is None and self.processes.web is None:
            raise ValueError(
                "missing key 'app.run' (or processes.web): add the command that serves the"
                ' app, e.g. [processes] web = "python -m gunicorn -b {host}:{port} app:app"'
            )
        return self

    logs: LogRotation = Field(default_factory=LogRotation)

    @field_validator("environments")
    @classmethod
    def _envs(cls, value: dict[str, Environment]) -> dict[str, Environment]:
        if not value:
            raise ValueError('define at least one, e.g. [environments.dev] branch="dev" port=8001')
        for name in value:
            if not NAME_RE.match(name):
                raise ValueError(f"environment name {name!r}: use lowercase letters and digits")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> Config:
        seen: dict[int, str] = {}
        for name, env in self.environments.items():
            if env.port in seen:
                raise ValueError(
                    f"environments.{name}.port = {env.port} is also the port of "
                    f"environments.{seen[env.port]}; give each environment its own port"
                )
            seen[env.port] = name
        for name, env in self.environments.items():
            source = env.promote_from
            if source is not None and (source == name or source not in self.environments):
                known = ", ".join(n for n in self.environments if n != name)
                raise ValueError(
                    f"environments.{name}.promote_from = {source!r}: name another environment "
                    f"({known})"
                )
        return self
