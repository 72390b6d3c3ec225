"""The DeployTarget seam: where app instances run, and how traffic reaches them.

A target starts and stops instances of a release and says where each one answers (its
address, hence its health URL). It never moves traffic itself: switch, drain and hold belong
to the front door, which a target hands out per environment as a ``TrafficControl`` (the
pipeline's synchronous view of a FrontDoor). ``traffic_steps`` says which traffic steps of a
plan a target needs; a target whose platform does its own rolling update (Swarm) would need
none.

Adding a target (ssh fleet, docker, swarm):
  1. implement ``DeployTarget`` (and ``TrafficControl``) in ``shiplane/targets/<name>.py``;
  2. register it in ``shiplane/targets/registry.py`` under the name the config uses;
  3. run the saga unit tests against it with its fake, then an end-to-end test on real parts.
The pipeline only ever talks to ``ctx.target``: no route strings, no addresses of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shiplane.logs_rotate import LogRotation

if TYPE_CHECKING:  # the health module brings httpx, which only a wait needs
    from shiplane.targets.health import HealthOutcome, HealthPolicy

INSTANCE_SPEC_VERSION = 1


class WorkerSpec(BaseModel):
    """One worker process type of a release (``[processes]``): its command and how many run."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    run: str
    count: int = 1


class InstanceSpec(BaseModel):
    """What to run for one instance of a release: target-neutral, and the stored record of
    what serves (``env_state.spec``), so it carries a version for later readers."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = INSTANCE_SPEC_VERSION
    app: str = ""  # v1 records name none: the app whose state.db holds them
    env: str
    release: str
    release_dir: str
    sha: str
    run: str = Field(description="Command line; {port} is replaced by the instance's port.")
    variables: dict[str, str] = Field(default_factory=dict)
    env_file: str | None = None
    database_url: str | None = None
    stop_timeout: float = 10.0
    drain_timeout: float = 30.0
    log_path: str
    # How log_path rotates ([logs] of the config that deployed it).
    log_rotation: LogRotation = Field(default_factory=LogRotation)
    health: str = "/"
    # Seconds between the server's probes of the serving instance (shiplane.server.health_monitor).
    monitor_interval: float = 5.0
    # The environment's front-door settings (shiplane.frontdoor.settings.DoorSettings as a
    # dict): they travel with what serves, so a switch, an undo and a restore after a server
    # restart open the door as the serving release's config said.
    front_door: dict[str, Any] = Field(default_factory=dict)
    # ``[app] static``: URL prefix -> directory in the release, served by the front door from
    # the release that serves (it travels with the instance, so a switch moves it too).
    static: dict[str, str] = Field(default_factory=dict)
    static_max_age: int = 3600
    # The release's other process types, started beside the web instance after the switch
    # (and by a server restart); ``process`` names the type an instance runs.
    process: str = "web"
    workers: dict[str, WorkerSpec] = Field(default_factory=dict)
    worker_grace: float = 5.0

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> InstanceSpec:
        """Read a stored record of any version this code knows (v0 had no version key)."""
        version = int(data.get("version", 0) or 0)
        if version > INSTANCE_SPEC_VERSION:
            raise ValueError(
                f"instance record version {version} is newer than this shiplane "
                f"({INSTANCE_SPEC_VERSION}); upgrade shiplane"
            )
        return cls.model_validate({**data, "version": INSTANCE_SPEC_VERSION})

    def to_stored(self) -> dict[str, Any]:
        return self.model_dump()


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str
    port: int

    def url(self, path: str = "") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"


class Instance(BaseModel):
    """One running instance as a target reports it."""

    model_config = ConfigDict(frozen=True)

    id: str
    env: str
    release: str
    sha: str
    address: Address
    state: str = "running"
    log_path: str | None = None
    exited: bool = False  # the process is gone and no restart is under way
    pid: int | None = None
    restarts: int = 0  # crashes the supervisor restarted it after


class StandbyClaim(BaseModel):
    """What a rollback asked the target for: the env's warm standby, now its to serve, or
    why there is none to use (``reason``)."""

    instance: Instance | None = None
    pid: int | None = None
    reason: str | None = None


class ActiveUpstream(BaseModel):
    """What an environment's front door routes to now."""

    instance_id: str | None
    info: dict[str, Any] | None = None
    port: int | None = None


class TrafficControl(Protocol):
    """The pipeline's view of one environment's front door."""

    def active(self) -> ActiveUpstream: ...

    def switch(self, instance_id: str | None, info: dict[str, Any] | None) -> str | None:
        """Route every new request to ``instance_id``; returns the previous instance's id."""
        ...

    def drain(self, instance_id: str, timeout: float, standby: float | None = None) -> bool:
        """Wait for ``instance_id``'s in-flight requests, then stop it (with ``standby``:
        keep it running unrouted that many seconds, for a rollback); False on timeout."""
        ...

    def drain_later(
        self, instance_id: str, timeout: float, deployment_id: str, standby: float | None = None
    ) -> None:
        """``drain`` in the background and return at once; the outcome goes to the logs
        (``deployment_id``'s among them). A later start in the env waits for it."""
        ...

    def claim_standby(self, spec: InstanceSpec) -> StandbyClaim:
        """The env's standby instance when it runs ``spec`` and is healthy now, taken off
        standby (the caller switches to it); else why not. Never starts anything."""
        ...

    def keep_standby(self, instance_id: str, ttl: float) -> bool:
        """Put an instance ``claim_standby`` gave back on standby (the rollback was undone)."""
        ...

    def hold(self, timeout: float) -> bool:
        """New requests wait (at most ``timeout``, then 503 + Retry-After) until ``release``;
        returns once the in-flight ones finished (False: some were still running at the
        bound)."""
        ...

    def release(self) -> None:
        """Let the waiting requests through, to whatever serves now."""
        ...

    def maintenance(self, on: bool, bypass: str | None) -> bool:
        """Answer every request with the maintenance page (but health and version; a request
        carrying ``bypass`` passes), or stop; False when no front door is open for the env."""
        ...

    def restore(self) -> str | None:
        """Serve again what state.db records for the env (its old instance is gone)."""
        ...

    def url(self) -> str:
        """Where clients reach the environment (the front door's public address)."""
        ...


class ProcessControl(Protocol):
    """One environment's worker processes (every process type but web)."""

    def replace(self, spec: InstanceSpec, grace: float, fresh: bool = False) -> dict[str, Any]:
        """Run ``spec``'s workers instead of the ones running: the new ones start, must stay
        up ``grace`` seconds, then the old ones get SIGTERM (then SIGKILL after their stop
        timeout). A new worker that exits within ``grace`` leaves the old ones running and
        answers ``{"ok": False, "failed": {"process", "exit_code", "seconds", "output"}}``.
        The same release's workers already running are kept (``"kept": True``) unless
        ``fresh``."""
        ...

    def pause(self) -> list[str]:
        """Stop the workers (a hold, a restore): the ids of those stopped."""
        ...

    def resume(self) -> list[str]:
        """Start again the workers ``pause`` stopped (none were replaced since)."""
        ...

    def scale(self, spec: InstanceSpec) -> dict[str, Any]:
        """Run ``spec``'s worker counts (the serving release's, scaled): start or stop the
        difference, without a new release."""
        ...

    def listing(self) -> dict[str, Any]:
        """{"workers": [...], "paused": bool, "counts": {...}}"""
        ...


class DeployTarget(Protocol):
    name: ClassVar[str]
    traffic_steps: ClassVar[frozenset[str]]

    def preflight(self, env: str, port: int, domains: tuple[str, ...] = ()) -> None:
        """Refuse (ConfigError) when the env's front door cannot be placed where configured
        (``domains``: the host names it shares its port by)."""
        ...

    def start(self, spec: InstanceSpec) -> Instance: ...

    def wait_healthy(self, instance: Instance, path: str, policy: HealthPolicy) -> HealthOutcome:
        """Probe ``instance`` at ``path`` until it is healthy or the policy gives up; an
        instance whose process exits ends the wait at once (exit code and last output)."""
        ...

    def stop(self, instance_id: str) -> bool: ...

    def instances(self, env: str) -> list[Instance]: ...

    def traffic(self, env: str, port: int) -> TrafficControl: ...

    def processes(self, env: str) -> ProcessControl: ...

    def available(self) -> bool:
        """True when the target answers now (without starting anything)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What status shows about the target itself: {"running": bool, ...}."""
        ...

    def runtime(self, env: str) -> dict[str, Any]:
        """What status shows about ``env``'s processes: ``standby`` (release, pid,
        expires_at, health), ``memory`` (RSS of serving + standby) and ``connections``
        (PostgreSQL's budget); {} when the target cannot say."""
        ...
