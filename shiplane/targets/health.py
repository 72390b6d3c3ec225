"""Waiting for an instance to become healthy: the one loop the deploy's health step and the
server's restore both use."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class HealthPolicy:
    interval: float = 1.0
    timeout: float = 30.0
    request_timeout: float = 5.0
    retries: int | None = None


@dataclass(frozen=True)
class HealthOutcome:
    healthy: bool
    attempts: int
    last: str  # what the last probe saw: "HTTP 503", "ConnectError"


def wait_healthy(url: str, policy: HealthPolicy) -> HealthOutcome:
    """Probe ``url`` until it answers 2xx or the timeout or retries run out."""
    deadline = time.monotonic() + policy.timeout
    attempts = 0
    last = "no answer"
    # Plain HTTP to the instance: verify=False only skips loading a CA bundle never used.
    with httpx.Client(timeout=policy.request_timeout, verify=False) as client:
        while True:
            attempts += 1
            try:
                response = client.get(url)
                if 200 <= response.status_code < 300:
                    return HealthOutcome(True, attempts, f"HTTP {response.status_code}")
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() + policy.interval > deadline:
                return HealthOutcome(False, attempts, last)
            if policy.retries is not None and attempts >= policy.retries:
                return HealthOutcome(False, attempts, last)
            time.sleep(policy.interval)
