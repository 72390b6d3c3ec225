"""The short road to this machine's server for `status`, `history`, `deploy` and `rollback`
(``shiplane.cli.fast``): the raw config and the files it names, sent over the control socket
with the standard library only (``shiplane.cli.fast_http``). No Pydantic, httpx or api
boundary is imported: the server validates the config it receives and makes every check of
the operation anyway (``shiplane.config.snapshot.receive``,
``operations.boundary.run_operation``) and answers with the same Result the full client would
have relayed.

``ask`` answers None whenever the short road is not the plain case (no config found, a config
this module cannot read as TOML, an environment on another server, an enforced host, no server
answering, a stopped server, a request the server did not take). The caller then takes the full
road (``shiplane.cli.main``), which validates, starts a missing server, and words every error.

A deploy sends its commits first (``shiplane.cli.fast_deploy``). A read-only command may be
asked again on the full road whatever went wrong. `deploy` and `rollback` may not: once the
server has taken one (its answer began with 200), a lost answer is reported as the full road
reports it (exit 7, recovery resolves what was left), never sent a second time; and once the
result is in, nothing after it (the env branches fetched back, the working tree's warning)
can lose it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import tomllib
from pathlib import Path
from typing import Any

from shiplane.caller import local_caller
from shiplane.cli.fast_http import NotTaken, connect, post_events
from shiplane.cli.refs_back import PREFIX, fetch_back
from shiplane.config.packing import named_files
from shiplane.credentials import client_token
from shiplane.errors import OperationInterrupted, ShiplaneError
from shiplane.results import Result

CONFIG_NAME = "shiplane.toml"  # shiplane.config.loader.CONFIG_NAME, without its Pydantic import
DEFAULT_HOME = "~/.local/share/shiplane"  # shiplane.layout.DEFAULT_HOME, as above
TOKEN_HEADER = "x-shiplane-token"  # shiplane.server.control.TOKEN_HEADER
# Under the home, as shiplane.layout.ServerLayout names them.
SOCKET, PID, TOKEN = "server.sock", "server.pid", "server.token"
# As the full client (targets.control_client.OPERATION_SILENCE): the server sends a heartbeat
# every few seconds, so this long a silence means it stalled.
SILENCE = 30.0
# Commands that change something: never asked twice (see the module's docstring).
MUTATING = frozenset({"deploy", "rollback"})


def ask(name: str, args: dict[str, Any], config: str | None) -> dict[str, Any] | None:
    """Operation ``name``'s result as the server's JSON, or None: take the full road."""
    home = _home()
    if home is None:
        return None
    request = _body(name, args, config)
    if request is None:
        return None
    path, raw, body = request
    token = _token(home)
    if token is None:
        return None
    prepared = None
    if name == "deploy":  # the source and its commits first, as the full road sends them
        from shiplane.cli.fast_deploy import prepare

        prepared = prepare(raw, path, home, args)
        if prepared is None:
            return None
        body["args"] = {**args, "source": prepared.source}
    try:
        event, lost = _send(home / SOCKET, name, body, token)
    except _NotSent:
        if prepared is not None:
            prepared.discard()
        return None  # no server, or refused before it ran: the full road starts, or words it
    warnings = prepared.warnings() if prepared is not None else []
    if event is None:
        if name not in MUTATING:
            return None
        result = _interrupted(name, args, lost)
    else:
        result = event["result"]
        warnings.extend(_fetch_back(path, event.get("branches")))
    if warnings:
        result["warnings"] = [*result.get("warnings", []), *warnings]
    return result


class _NotSent(Exception):
    """Nothing reached the server's operation: the full road may take the command."""


def _send(
    sock_path: Path, name: str, body: dict[str, Any], token: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The result event, or None and why it is missing (an exception's name, or None when the
    answer ended without a result)."""
    try:
        sock = connect(sock_path)
    except OSError as exc:
        raise _NotSent from exc  # no server (or a stale socket)
    try:
        return _post(sock, f"/ops/{name}", body, token), None
    except NotTaken as exc:
        raise _NotSent from exc  # refused before it ran (a token, a limit)
    except Exception as exc:  # taken, then lost: whatever it was, never sent again
        return None, type(exc).__name__
    finally:
        sock.close()


def _fetch_back(path: Path, branches: object) -> list[str]:
    """The env branches into refs/remotes/shiplane/*, as the full road does; its warning."""
    if not isinstance(branches, dict) or not branches:
        return []  # an operation that moves no env branch
    try:
        warning = fetch_back(
            path.parent, branches, lambda repo: _fetch_objects(path, repo, branches)
        )
    except Exception as exc:  # the operation is done: its result is printed whatever happens
        warning = f"could not fetch the env branches back into {PREFIX}: {type(exc).__name__}"
    return [warning] if warning else []


def _fetch_objects(config_path: Path, user_repo: Path, branches: dict[str, str]) -> None:
    """Commits this repository lacks, fetched as the full road fetches them: rare (they were
    deployed from here), and the operation is done by then, so its imports cost nothing that
    matters."""
    from shiplane.cli.remote import connect as connect_server
    from shiplane.config.loader import load_config

    loaded = load_config(config_path)
    connection = connect_server(None)
    connection.open()
    try:
        connection.fetch_objects(user_repo, loaded.config.app.name, branches)
    finally:
        connection.close()


def _interrupted(name: str, args: dict[str, Any], lost: str | None) -> dict[str, Any]:
    """As the full road words an answer that broke off (``lost``: why), or ended without a
    result (shiplane.targets.control_client.operation, shiplane.cli.remote._send)."""
    if lost is not None:
        message = f"the shiplane server stopped answering during {name}: {lost}"
        hint = "run `shiplane status`: it restarts the server and recovers what the operation left"
    else:
        message = f"the shiplane server ended {name} without a result"
        hint = "run `shiplane status`: it recovers what the operation left"
    error = OperationInterrupted(message, next_action=hint)
    return Result(command=name, env=args.get("env")).fail(error).to_dict()


def _home() -> Path | None:
    """The single-user server's home, when it could be answering; None on an enforced host
    (its marker names the socket: the full road reads it) or when its server is stopped."""
    etc = Path(os.environ.get("SHIPLANE_ETC") or "/etc")  # shiplane.hostconfig.etc_dir
    if (etc / "shiplane" / "enforced").exists():
        return None
    home = Path(os.environ.get("SHIPLANE_HOME", DEFAULT_HOME)).expanduser().resolve()
    if not os.path.exists(home / SOCKET) or _stopped(home / PID):
        return None
    return home


def _stopped(pid_file: Path) -> bool:
    """The server is stopped by a signal: it would accept and never answer. The full road says
    so at once (exit 7). As shiplane.state.procs.process_stopped, whose package imports
    the state database."""
    try:
        pid = int(pid_file.read_text().strip())
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat[stat.rfind(")") + 2 :][:1] in ("T", "t")


def _token(home: Path) -> str | None:
    """What the request presents: the server's own token when this user may read it, else the
    client's (None: a client token the full road must refuse, with its message)."""
    try:
        return (home / TOKEN).read_text().strip()
    except OSError:
        pass
    try:
        return client_token() or ""
    except ShiplaneError:
        return None


def _body(
    name: str, args: dict[str, Any], config: str | None
) -> tuple[Path, dict[str, Any], dict[str, Any]] | None:
    """The config's path, its raw TOML and the request the full client would send
    (shiplane.cli.remote._send), or None."""
    path = Path(config).resolve() if config is not None else _find_config(Path.cwd().resolve())
    try:
        text = path.read_text(encoding="utf-8") if path is not None else None
        raw = tomllib.loads(text) if text is not None else None
        if path is None or text is None or raw is None or _elsewhere(raw):
            return None
        files = {f.key: f.path.read_text(encoding="utf-8") for f in named_files(raw, path.parent)}
        token = client_token()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    except (TypeError, AttributeError, ShiplaneError):
        return None  # a malformed table or client token: the full road says what is wrong
    return (
        path,
        raw,
        {
            "caller": dataclasses.asdict(local_caller()),
            "args": args,
            "config": {"path": str(path), "text": text, "files": files},
            "token": token,
            "factor": None,
            # Test-only; the server ignores it unless started with SHIPLANE_ALLOW_FAULTS=1.
            "fault": os.environ.get("SHIPLANE_FAULT") or None,
        },
    )


def _find_config(here: Path) -> Path | None:
    # As shiplane.config.loader.find_config; a miss takes the full road, whose error names
    # the fix.
    for directory in (here, *here.parents):
        if (directory / CONFIG_NAME).is_file():
            return directory / CONFIG_NAME
    return None


def _elsewhere(raw: dict[str, Any]) -> bool:
    """An environment served by another machine's server (over SSH): the full road's."""
    environments = raw.get("environments") or {}
    return not isinstance(environments, dict) or any(
        not isinstance(env, dict) or env.get("server") for env in environments.values()
    )


def _post(
    sock: socket.socket, path: str, body: dict[str, Any], token: str
) -> dict[str, Any] | None:
    """POST the operation; its result event (the env branches beside the result), or None
    when the stream ended without one."""
    headers = {TOKEN_HEADER: token, "content-type": "application/json"}
    for event in post_events(sock, path, json.dumps(body).encode(), headers, SILENCE):
        if event.get("event") == "result":  # progress and heartbeats come before it
            return event if isinstance(event.get("result"), dict) else None
    return None
