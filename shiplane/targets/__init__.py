"""Where app instances run: the DeployTarget seam and its implementations."""

from shiplane.targets.base import (
    ActiveUpstream,
    Address,
    DeployTarget,
    Instance,
    InstanceSpec,
    TrafficControl,
)

__all__ = [
    "ActiveUpstream",
    "Address",
    "DeployTarget",
    "Instance",
    "InstanceSpec",
    "TrafficControl",
]
