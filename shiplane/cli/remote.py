"""The CLI as a client: check the request here (bad input never starts a server), then ask the
server (this machine's, or another's over SSH: ``shiplane.cli.connection``) to run it, sending
the config and the commits it needs, and relay its progress and result."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# What every command that runs in the server imports here, and why (CLI startup; `--help`
# imports none of it, see shiplane.cli.main):
#  * shiplane.config.* (Pydantic models): the request is validated here, so that bad input
#    never reaches, or starts, a server, and the config travels with it (config.snapshot);
#  * shiplane.cli.connection -> targets.control_client -> httpx: the call to the server;
#  * shiplane.api -> operations.boundary/registry: the same checks as the server's; the
#    operations' own modules (pipeline, checks, drivers) load lazily (shiplane.lazy).
from shiplane import api, gitops
from shiplane.caller import Caller
from shiplane.cli.connection import Connection, Local, ensure_then, host_for
from shiplane.cli.refs_back import fetch_back, remote_refs
from shiplane.cli.ssh import Ssh
from shiplane.config import snapshot
from shiplane.config.hosts import parse_host
from shiplane.config.loader import LoadedConfig, find_config, load_config
from shiplane.credentials import client_token
from shiplane.errors import OperationInterrupted, ShiplaneError
from shiplane.gitops import server_repo
from shiplane.layout import ServerLayout
from shiplane.operations.boundary import guarded
from shiplane.results import Result

if TYPE_CHECKING:  # a type only: the pipeline is the server's to import
    from shiplane.pipeline.context import Progress

FOLLOW_INTERVAL = 0.25

T = TypeVar("T")


def sends_commits(name: str, args: dict[str, Any]) -> bool:
    """Whether the client sends commits first: a deploy (what it ships) and a migrate (the
    migrations about to ship live in those commits; the server never reads a working tree)."""
    return args.get("source") is None and name in ("deploy", "migrate")


def connect(host: str | None) -> Connection:
    """This machine's server, or the one on ``host`` over SSH."""
    return Local(ServerLayout.default()) if host is None else Ssh(parse_host(host))


def run_in_server(
    name: str,
    caller: Caller,
    *,
    config_path: Path | None = None,
    loaded: LoadedConfig | None = None,
    progress: Progress | None = None,
    host: str | None = None,
    factor: dict[str, Any] | None = None,
    **args: Any,
) -> dict[str, Any]:
    """The operation's result as the server's JSON (what `--json` prints). ``loaded`` is a
    config already loaded (the git hooks: the server's copy); ``host`` a remote server;
    ``factor`` a person's factor for the server to verify."""
    if loaded is None:
        try:  # parsed once, for the checks here and for what is sent
            loaded = load_config((config_path or find_config()).resolve())
        except ShiplaneError as exc:
            return Result(command=name, env=args.get("env")).fail(exc).to_dict()
    failure = api.validate(name, caller, loaded=loaded, **args)
    if failure is not None:
        return failure.to_dict()
    outcome: dict[str, Any] = {}
    warnings: list[str] = []

    def send() -> Result:
        assert loaded is not None
        config = loaded
        connection = connect(host_for(host, config, args.get("env")))
        connection.open()
        try:
            return _send(
                connection, name, caller, config, progress, args, outcome, warnings, factor
            )
        finally:
            connection.close()

    relayed = guarded(name, args.get("env"), send)
    payload = outcome if outcome else relayed.to_dict()
    if warnings:
        payload["warnings"] = [*payload.get("warnings", []), *warnings]
    return payload


def _send(
    connection: Connection,
    name: str,
    caller: Caller,
    loaded: LoadedConfig,
    progress: Progress | None,
    args: dict[str, Any],
    outcome: dict[str, Any],
    warnings: list[str],
    factor: dict[str, Any] | None = None,
) -> Result:
    app = loaded.config.app.name
    request_args = dict(args)
    # Git work whose answer is needed only after the result runs beside the request, off the
    # hop's critical path (a git process costs ~3.5 ms; the budget is 20 ms a deploy).
    aside = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shiplane-client")
    dirty: Future[bool] | None = None
    known: Future[dict[str, str]] | None = None
    if sends_commits(name, args):
        env_config = loaded.config.environments[args["env"]]
        user_repo, source = server_repo.locate_source(loaded.repo_dir, env_config, args.get("ref"))
        if name == "deploy":
            dirty = aside.submit(gitops.is_dirty, user_repo)
        if name in server_repo.MOVES_BRANCHES:
            known = aside.submit(remote_refs, user_repo)
        ensure_then(connection, lambda: connection.send_commits(user_repo, app, source.shas))
        request_args["source"] = dataclasses.asdict(source)
    body = {
        "caller": dataclasses.asdict(caller),
        "args": request_args,
        # The config travels: the server never reads the client's files.
        "config": snapshot.pack(loaded),
        "token": client_token(),
        "factor": factor,
        # Test-only; the server ignores it unless started with SHIPLANE_ALLOW_FAULTS=1.
        "fault": os.environ.get("SHIPLANE_FAULT") or None,
    }
    extra: dict[str, Any] = {}
    try:
        relayed = ensure_then(
            connection, lambda: _relay(connection, name, body, progress, outcome, extra)
        )
        if dirty is not None and _answer(dirty, None):
            warnings.append("the working tree has uncommitted changes: they were not deployed")
    finally:
        aside.shutdown(wait=False)
    if relayed:
        branches = extra.get("branches")
        if name in server_repo.MOVES_BRANCHES and args.get("source") is None and branches:
            refs: dict[str, str] | None = None
            if known is not None:
                refs = _answer(known, refs)
            warning = fetch_back(
                loaded.repo_dir,
                branches,
                lambda user_repo: connection.fetch_objects(user_repo, app, branches),
                refs,
            )
            warnings.extend([warning] if warning else [])
        return Result(command=name)
    raise OperationInterrupted(
        f"the shiplane server ended {name} without a result",
        next_action="run `shiplane status`: it recovers what the operation left",
    )


def _answer(future: Future[T], default: T | None) -> T | None:
    """A side job's answer; its failure only costs what it would have told (a warning)."""
    try:
        return future.result(timeout=30)
    except (ShiplaneError, OSError, TimeoutError):
        return default


def _relay(
    connection: Connection,
    name: str,
    body: dict[str, Any],
    progress: Progress | None,
    outcome: dict[str, Any],
    extra: dict[str, Any],
) -> bool:
    """Relay the operation's events; True once its result arrived (into ``outcome``; what the
    server adds beside it, the env branches, into ``extra``)."""
    for event in connection.client.operation(name, body):
        if event.get("event") == "progress" and progress is not None:
            progress(event["step"], event["status"])
        elif event.get("event") == "result":
            outcome.update(event["result"])
            extra.update({k: v for k, v in event.items() if k not in ("event", "result")})
            return True
    return False


def follow_log(
    deployment_id: str, caller: Caller, config_path: Path | None, host: str | None = None
) -> None:
    """Write a deployment's log to stderr as it grows, until the deployment has ended. It asks
    the server (the log is the server's to read), so it works wherever the server runs."""
    offset = 0
    while True:
        payload = run_in_server(
            "logs",
            caller,
            config_path=config_path,
            host=host,
            deployment_id=deployment_id,
            offset=offset,
        )
        if not payload.get("ok"):
            return  # the final `logs` call reports the error
        sys.stderr.write(payload.get("log", ""))
        sys.stderr.flush()
        offset = int(payload.get("next_offset", offset))
        if (payload.get("deployment") or {}).get("status") != "running":
            return
        time.sleep(FOLLOW_INTERVAL)


class _Stop(BaseException):
    """SIGTERM while following: end as Ctrl-C does."""


def follow_env_log(
    env: str,
    cursor: str | None,
    lines: int,
    caller: Caller,
    config_path: Path | None,
    host: str | None = None,
) -> dict[str, Any]:
    """Write the app's output in ``env`` to stderr as it grows (its last ``lines`` first,
    unless ``cursor`` says where to go on from), until interrupted; the result then carries
    the cursor where it stopped, so nothing is shown twice or skipped by the next reader."""

    def stop(_signum: int, _frame: object) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    payload: dict[str, Any] = {}
    try:
        while True:
            args: dict[str, Any] = {"env": env, "lines": lines}
            if cursor is not None:
                args["cursor"] = cursor
            payload = run_in_server("logs", caller, config_path=config_path, host=host, **args)
            if not payload.get("ok"):
                return payload
            text = str(payload.get("log", ""))
            sys.stderr.write(text)
            sys.stderr.flush()
            cursor = str(payload["cursor"])
            if not text:
                time.sleep(FOLLOW_INTERVAL)
    except (KeyboardInterrupt, _Stop):
        # Stopped before the first answer: nothing was shown, the cursor is the caller's.
        payload = payload or Result(command="logs", env=env).to_dict()
    finally:
        signal.signal(signal.SIGTERM, previous)
    # What was shown went to stderr already; the JSON says where it stopped.
    return {
        **payload,
        "log": "",
        "cursor": cursor,
        "followed": True,
        "next_action": f"shiplane logs --env {env} --cursor {cursor}",
    }
