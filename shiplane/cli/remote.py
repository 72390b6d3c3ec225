"""The CLI as a client: check the request here (bad input never starts a server), then ask this
host's server to run it and relay its progress and result."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

from shiplane import api
from shiplane.caller import Caller
from shiplane.config.loader import find_config, load_config
from shiplane.errors import OperationInterrupted, ServerUnavailable
from shiplane.layout import Layout
from shiplane.operations.boundary import guarded
from shiplane.pipeline.context import Progress
from shiplane.results import Result
from shiplane.targets.control_client import ServerClient

FOLLOW_INTERVAL = 0.25


def run_in_server(
    name: str,
    caller: Caller,
    *,
    config_path: Path | None = None,
    progress: Progress | None = None,
    **args: Any,
) -> dict[str, Any]:
    """The operation's result as the server's JSON (what `--json` prints)."""
    failure = api.validate(name, caller, config_path=config_path, **args)
    if failure is not None:
        return failure.to_dict()
    outcome: dict[str, Any] = {}

    def send() -> Result:
        path = (config_path or find_config()).resolve()
        layout = Layout.for_app(load_config(path).config.app.name)
        client = ServerClient(layout.server)
        body = {
            "caller": dataclasses.asdict(caller),
            "args": args,
            "config_path": str(path),
            "token": os.environ.get("SHIPLANE_TOKEN") or None,
            # Test-only; the server ignores it unless started with SHIPLANE_ALLOW_FAULTS=1.
            "fault": os.environ.get("SHIPLANE_FAULT") or None,
        }
        try:
            events = _relay(client, name, body, progress, outcome)
        except ServerUnavailable:
            # Single-user mode: the first client to find no server starts one, then asks again.
            client.ensure_running()
            events = _relay(client, name, body, progress, outcome)
        if events:
            return Result(command=name)
        raise OperationInterrupted(
            f"the shiplane server ended {name} without a result",
            next_action="run `shiplane status`: it recovers what the operation left",
        )

    relayed = guarded(name, args.get("env"), send)
    return outcome if outcome else relayed.to_dict()


def _relay(
    client: ServerClient,
    name: str,
    body: dict[str, Any],
    progress: Progress | None,
    outcome: dict[str, Any],
) -> bool:
    """Relay the operation's events; True once its result arrived (into ``outcome``)."""
    for event in client.operation(name, body):
        if event.get("event") == "progress" and progress is not None:
            progress(event["step"], event["status"])
        elif event.get("event") == "result":
            outcome.update(event["result"])
            return True
    return False


def follow_log(deployment_id: str, caller: Caller, config_path: Path | None) -> None:
    """Write a deployment's log to stderr as it grows, until the deployment has ended. It asks
    the server (the log is the server's to read), so it works wherever the server runs."""
    offset = 0
    while True:
        payload = run_in_server(
            "logs", caller, config_path=config_path, deployment_id=deployment_id, offset=offset
        )
        if not payload.get("ok"):
            return  # the final `logs` call reports the error
        sys.stderr.write(payload.get("log", ""))
        sys.stderr.flush()
        offset = int(payload.get("next_offset", offset))
        if (payload.get("deployment") or {}).get("status") != "running":
            return
        time.sleep(FOLLOW_INTERVAL)
