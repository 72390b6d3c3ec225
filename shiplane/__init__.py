"""shiplane: safe, agent-drivable deployments for git-based web apps."""

__version__ = "0.1.0"
