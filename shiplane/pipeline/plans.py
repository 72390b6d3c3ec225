"""The step plans, in one registry: what deploy, promote, rollback and restart run, in order.

Recovery resumes a deployment from its step records with the plan of its kind, so a step that
is in a plan can always be undone after a crash: there is no second list to forget it in.
"""

from __future__ import annotations

from shiplane.pipeline.saga import Step
from shiplane.pipeline.steps_database import BackupStep, MigrateStep
from shiplane.pipeline.steps_guard import GuardStep
from shiplane.pipeline.steps_processes import ReleaseStep, RestartWorkersStep, WorkersStep
from shiplane.pipeline.steps_record import PruneStep, RecordStep
from shiplane.pipeline.steps_rollback import RestartTargetStep, RewindStep, TargetStep
from shiplane.pipeline.steps_schema_rollback import SchemaRollbackStep
from shiplane.pipeline.steps_source import (
    BuildStep,
    ExportStep,
    LockStep,
    PromoteRefStep,
    ResolveStep,
)
from shiplane.pipeline.steps_standby import StandbyHealthStep, StandbyStartStep, StoppingDrainStep
from shiplane.pipeline.steps_traffic import DrainStep, HealthStep, StartStep, SwitchStep
from shiplane.pipeline.steps_verify import SmokeStep, VerifyStep

DEPLOY: list[type[Step]] = [
    LockStep,
    ResolveStep,
    ExportStep,
    BuildStep,
    GuardStep,
    BackupStep,
    MigrateStep,
    ReleaseStep,
    StartStep,
    HealthStep,
    VerifyStep,
    SwitchStep,
    SmokeStep,
    WorkersStep,
    DrainStep,
    RecordStep,
    PruneStep,
]

PLANS: dict[str, list[type[Step]]] = {
    "deploy": DEPLOY,
    # Promotion is a deploy whose commit is the verified one, fast-forwarded, never merged.
    "promote": [PromoteRefStep if cls is ResolveStep else cls for cls in DEPLOY],
    "rollback": [
        LockStep,
        TargetStep,
        BackupStep,
        # Code goes back first: the old release starts on the current schema, and the
        # schema step keeps it when that release passes its checks there (else: hold, down).
        # Within the standby window the start takes the warm instance: no start, no wait.
        StandbyStartStep,
        StandbyHealthStep,
        SchemaRollbackStep,
        SwitchStep,
        SmokeStep,
        WorkersStep,
        StoppingDrainStep,
        RecordStep,
        RewindStep,
    ],
    # A fresh instance of what serves (new settings, a stuck app): blue/green as ever, with no
    # new release, no build and no migration, so there is nothing to back up either.
    "restart": [
        LockStep,
        RestartTargetStep,
        StartStep,
        HealthStep,
        SwitchStep,
        SmokeStep,
        RestartWorkersStep,
        StoppingDrainStep,
        RecordStep,
    ],
}


def plan(kind: str, traffic_steps: frozenset[str] | None = None) -> list[Step]:
    """Fresh step objects for ``kind``; traffic steps the target does not need are left out."""
    traffic = {"switch", "smoke", "drain"}
    return [
        cls()
        for cls in PLANS[kind]
        if traffic_steps is None or cls.name not in traffic or cls.name in traffic_steps
    ]


def step_classes(kind: str) -> dict[str, type[Step]]:
    """Step name -> class for ``kind`` (an unknown kind resumes as a deploy)."""
    return {cls.name: cls for cls in PLANS.get(kind, PLANS["deploy"])}
