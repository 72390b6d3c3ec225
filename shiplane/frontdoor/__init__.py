"""The front door: the traffic switch in front of an environment's instances (see base.py)."""
