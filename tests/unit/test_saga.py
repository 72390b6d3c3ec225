"""The saga with a fake target and a fake front door: undo order, the pivot, and recovery
after a crash at each step, all without a process or a socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from shiplane.config.loader import LoadedConfig, env_settings, parse_config
from shiplane.errors import ChecksFailedError
from shiplane.layout import Layout
from shiplane.pipeline.context import Context, DeployLog
from shiplane.pipeline.saga import SagaFailed, Step, resume, run_steps
from shiplane.pipeline.steps_record import RecordStep
from shiplane.pipeline.steps_source import LockStep
from shiplane.pipeline.steps_traffic import DrainStep, StartStep, SwitchStep
from shiplane.results import StepResult
from shiplane.state import lock
from shiplane.state.db import StateDB
from shiplane.targets.base import (
    ActiveUpstream,
    Address,
    Instance,
    InstanceSpec,
    StandbyClaim,
)

CONFIG = """
[app]
name = "fake"
run = "serve {port}"
[environments.dev]
branch = "dev"
port = 18001
"""


class FakeFrontDoor:
    """One environment's traffic: which instance is routed, and what was drained."""

    def __init__(self, target: FakeTarget, port: int) -> None:
        self.target = target
        self.port = port
        self.routed: str | None = None
        self.info: dict[str, Any] | None = None
        self.drained: list[str] = []
        self.held: float | None = None

    def active(self) -> ActiveUpstream:
        return ActiveUpstream(instance_id=self.routed, info=self.info, port=self.port)

    def switch(self, instance_id: str | None, info: dict[str, Any] | None) -> str | None:
        if instance_id is not None and instance_id not in self.target.running:
            from shiplane.errors import DeployFailedError

            raise DeployFailedError(f"no such instance {instance_id}")
        previous, self.routed, self.info = self.routed, instance_id, info
        return previous

    def drain(self, instance_id: str, timeout: float, standby: float | None = None) -> bool:
        # No warm standby here: the saga's order is what these tests look at.
        self.drained.append(instance_id)
        self.target.stop(instance_id)
        return True

    def drain_later(
        self, instance_id: str, timeout: float, deployment_id: str, standby: float | None = None
    ) -> None:
        self.drain(instance_id, timeout)

    def claim_standby(self, spec: InstanceSpec) -> StandbyClaim:
        return StandbyClaim(reason="the fake keeps no standby")

    def keep_standby(self, instance_id: str, ttl: float) -> bool:
        return False

    def hold(self, timeout: float) -> bool:
        self.held = timeout
        return True

    def release(self) -> None:
        self.held = None

    def restore(self) -> str | None:
        """The old instance is gone: start the recorded release again and serve it."""
        spec = InstanceSpec(
            env="dev",
            release="1-aaaaaaa",
            release_dir="/x",
            sha="a" * 40,
            run="x",
            log_path="/dev/null",
        )
        self.routed = self.target.start(spec).id
        return self.routed

    def url(self) -> str:
        return f"fake://door:{self.port}"


class FakeTarget:
    name: ClassVar[str] = "fake"
    traffic_steps: ClassVar[frozenset[str]] = frozenset({"switch", "smoke", "drain"})

    def __init__(self) -> None:
        self.running: dict[str, Instance] = {}
        self.started = 0
        self.doors: dict[str, FakeFrontDoor] = {}

    def available(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {"running": True}

    def preflight(self, env: str, port: int, domains: tuple[str, ...] = ()) -> None:
        return None

    def start(self, spec: InstanceSpec) -> Instance:
        self.started += 1
        instance = Instance(
            id=f"i{self.started}",
            env=spec.env,
            release=spec.release,
            sha=spec.sha,
            address=Address(host="fake", port=10000 + self.started),
        )
        self.running[instance.id] = instance
        return instance

    def stop(self, instance_id: str) -> bool:
        return self.running.pop(instance_id, None) is not None

    def instances(self, env: str) -> list[Instance]:
        return [i for i in self.running.values() if i.env == env]

    def traffic(self, env: str, port: int) -> FakeFrontDoor:
        return self.doors.setdefault(env, FakeFrontDoor(self, port))


class Crash(BaseException):
    """A process killed mid-step: nothing below the saga catches it."""


class ReleaseStep(Step):
    """Stands in for resolve/export/build: what they leave in the facts."""

    name = "export"
    undone: ClassVar[list[str]] = []

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        ctx.facts.sha = "b" * 40
        ctx.facts.release = "2-bbbbbbb"
        ctx.facts.release_dir = str(ctx.layout.releases(ctx.env) / "2-bbbbbbb")
        Path(ctx.facts.release_dir).mkdir(parents=True, exist_ok=True)
        return {"release": ctx.facts.release}

    def undo(self, ctx: Context, data: dict[str, Any]) -> str | None:
        ReleaseStep.undone.append(ctx.deployment_id)
        return "removed release"


class FailingStep(Step):
    name = "verify"

    def run(self, ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        raise ChecksFailedError("1 check(s) failed")


PLAN: list[type[Step]] = [LockStep, ReleaseStep, StartStep, SwitchStep, DrainStep, RecordStep]


def classes() -> dict[str, type[Step]]:
    return {cls.name: cls for cls in PLAN}


@pytest.fixture
def world(tmp_path: Path) -> tuple[Context, FakeTarget]:
    config_path = tmp_path / "repo" / "shiplane.toml"
    config_path.parent.mkdir()
    loaded = LoadedConfig(config=parse_config(CONFIG, config_path), path=config_path)
    layout = Layout(tmp_path / "home", "fake")
    layout.ensure("dev")
    db = StateDB(layout.state_db)
    settings = env_settings(loaded, "dev")
    target = FakeTarget()
    # What serves before the deployment: instance i-old on release 1.
    old = target.start(
        InstanceSpec(
            env="dev",
            release="1-aaaaaaa",
            release_dir="/x",
            sha="a" * 40,
            run="x",
            log_path="/dev/null",
        )
    )
    target.traffic("dev", 18001).switch(old.id, {"sha": "a" * 40})
    db.create_deployment(id="d1", env="dev", kind="deploy", pid=0, log_path="")
    ctx = Context(
        layout=layout,
        db=db,
        target=target,
        env="dev",
        deployment_id="d1",
        log=DeployLog(layout.deploy_log("dev", "d1"), settings.redactor()),
        redact=settings.redactor(),
        loaded=loaded,
        settings=settings,
    )
    yield ctx, target
    ctx.log.close()
    db.close()


def test_failure_before_the_pivot_undoes_done_steps_newest_first(
    world: tuple[Context, FakeTarget],
) -> None:
    ctx, target = world
    order: list[str] = []
    ctx.progress = lambda step, status: order.append(step) if status == "undoing" else None
    steps = [LockStep(), ReleaseStep(), StartStep(), SwitchStep(), FailingStep()]
    with pytest.raises(SagaFailed) as failed:
        run_steps(ctx, steps, [])
    assert order == ["verify", "switch", "start", "export", "lock"]
    assert not failed.value.past_pivot
    door = target.traffic("dev", 18001)
    assert door.routed == "i1"  # the old instance serves again
    assert list(target.running) == ["i1"]  # the new one was stopped
    assert lock.holder(ctx.db, "dev") is None
    statuses = {s["name"]: s["status"] for s in ctx.db.steps("d1")}
    assert statuses == {
        "lock": "undone",
        "export": "undone",
        "start": "undone",
        "switch": "undone",
        "verify": "undone",
    }


def test_failure_after_the_pivot_rolls_forward(world: tuple[Context, FakeTarget]) -> None:
    ctx, target = world
    results: list[StepResult] = []
    steps = [LockStep(), ReleaseStep(), StartStep(), SwitchStep(), DrainStep(), FailingStep()]
    with pytest.raises(SagaFailed) as failed:
        run_steps(ctx, steps, results)
    assert failed.value.past_pivot and failed.value.undone == []
    assert target.traffic("dev", 18001).routed == "i2"  # the new version keeps serving
    assert list(target.running) == ["i2"]


@pytest.mark.parametrize("crash_at", [cls.name for cls in PLAN])
def test_resume_after_a_crash_at_each_step(
    world: tuple[Context, FakeTarget], crash_at: str
) -> None:
    ctx, target = world

    steps: list[Step] = [cls() for cls in PLAN]
    crashing = next(s for s in steps if s.name == crash_at)
    original = crashing.run

    def crash(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
        original(ctx, data)  # the step's effect happened; the process died before recording
        raise Crash

    crashing.run = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        run_steps(ctx, steps, [])
    records = ctx.db.steps("d1")
    assert records[-1]["name"] == crash_at and records[-1]["status"] == "started"

    outcome, _undone = resume(ctx, records, classes())
    door = target.traffic("dev", 18001)
    pivot_done = any(r["name"] == "drain" and r["status"] == "done" for r in records)
    if pivot_done:
        # Past the pivot: the new release is recorded as what serves.
        assert outcome == "forward"
        state = ctx.db.env_state("dev")
        assert state is not None and state["release"] == "2-bbbbbbb"
        assert state["instance_id"] == door.routed == "i2"
        assert ctx.layout.current("dev").resolve().name == "2-bbbbbbb"
    else:
        # Before it: everything is undone, the old instance serves, nothing new runs.
        assert outcome == "undone"
        assert door.routed is not None
        assert target.running[door.routed].release == "1-aaaaaaa"
        assert [i.release for i in target.running.values()] == ["1-aaaaaaa"]
        assert ctx.db.env_state("dev") is None
        assert all(r["status"] == "undone" for r in ctx.db.steps("d1"))
        assert lock.holder(ctx.db, "dev") is None


def test_every_plan_has_one_pivot_and_unique_step_names() -> None:
    from shiplane.pipeline.plans import PLANS, plan

    for kind, steps in PLANS.items():
        names = [cls.name for cls in steps]
        assert len(names) == len(set(names)), kind
        assert [cls.name for cls in steps if cls.pivot] == ["drain"], kind
    # A target that moves traffic itself gets a plan without the front-door steps.
    assert [s.name for s in plan("rollback", frozenset())] == [
        "lock",
        "target",
        "backup",
        "start",
        "health",
        "migrate",
        "workers",
        "record",
        "rewind",
    ]
