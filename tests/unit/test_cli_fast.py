"""The console entry point's pre-dispatch: which command lines `shiplane.cli.fast` answers
itself (the plain `status` and `history`), and that it leaves every other one to Typer."""

from __future__ import annotations

import inspect
import io
import socket
import tomllib
from pathlib import Path

import pytest

from shiplane.cli.fast import DEFAULTS, Plain, parse
from shiplane.cli.fast_http import BadAnswer, NotTaken, _events, post_events
from shiplane.config.loader import load_config
from shiplane.config.packing import named_files
from shiplane.config.snapshot import pack

ROLLBACK = DEFAULTS["rollback"]
DEPLOY = DEFAULTS["deploy"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], Plain("status", {"env": None})),
        (["status", "dev", "--json"], Plain("status", {"env": "dev"}, as_json=True)),
        (["status", "--json", "dev"], Plain("status", {"env": "dev"}, as_json=True)),
        (["status", "-c", "a.toml"], Plain("status", {"env": None}, config="a.toml")),
        (["status", "-ca.toml"], Plain("status", {"env": None}, config="a.toml")),
        (["status", "--config=a.toml", "dev"], Plain("status", {"env": "dev"}, config="a.toml")),
        (["history"], Plain("history", {"env": None, "limit": 20})),
        (["history", "prod", "--limit", "3"], Plain("history", {"env": "prod", "limit": 3})),
        (["history", "--limit=007", "--json"], Plain("history", {"env": None, "limit": 7}, True)),
        (["rollback", "prod"], Plain("rollback", ROLLBACK | {"env": "prod"})),
        (
            ["rollback", "--to", "abc123", "dev", "--json", "--wait-drain"],
            Plain("rollback", ROLLBACK | {"env": "dev", "to": "abc123", "wait_drain": True}, True),
        ),
        (
            ["rollback", "dev", "--to=2-abc", "-c", "a.toml"],
            Plain("rollback", ROLLBACK | {"env": "dev", "to": "2-abc"}, config="a.toml"),
        ),
        (["deploy", "dev"], Plain("deploy", DEPLOY | {"env": "dev"})),
        (
            ["deploy", "--ref", "v2", "dev", "--include-rolled-back", "--wait-watch", "--json"],
            Plain(
                "deploy",
                DEPLOY
                | {"env": "dev", "ref": "v2", "include_rolled_back": True, "wait_watch": True},
                True,
            ),
        ),
        (
            ["deploy", "dev", "--redeploy", "--wait-drain", "--ref=abc"],
            Plain(
                "deploy",
                DEPLOY | {"env": "dev", "redeploy": True, "wait_drain": True, "ref": "abc"},
            ),
        ),
    ],
)
def test_plain_command_lines(argv: list[str], expected: Plain) -> None:
    assert parse(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["verify", "dev"],
        ["--host", "u@h", "status"],  # a global option first: Typer's
        ["status", "--help"],
        ["status", "-h"],
        ["status", "dev", "prod"],  # a second argument: Typer's error
        ["status", "--limit", "3"],  # not an option of status
        ["status", "-c"],  # no value
        ["status", "-c", "--json"],  # Typer takes "--json" as the path
        ["status", "-c=a.toml"],  # click reads "=a.toml"
        ["status", "--", "dev"],
        ["history", "--limit", "x"],
        ["history", "--limit", "-1"],
        ["history", "--limit"],
        ["status", "--jsonx"],
        ["status", "--wait-drain"],  # rollback's option, not status's
        ["status", "--to", "x"],
        ["rollback"],  # ENV is required: Typer's error
        ["rollback", "dev", "--to"],
        ["rollback", "dev", "--to", "--json"],
        ["rollback", "dev", "--wait-drain=1"],
        ["rollback", "dev", "--restore-db"],  # a rarer form: the full road
        ["rollback", "dev", "--discard-writes"],
        ["rollback", "dev", "--totp"],  # a person's factor: the full road
        ["rollback", "dev", "--hold-timeout", "5"],
        ["rollback", "dev", "--ref", "x"],  # deploy's option
        ["rollback", "dev", "--redeploy"],
        ["deploy"],
        ["deploy", "dev", "--to", "x"],  # rollback's option
        ["deploy", "dev", "--force"],  # a person's, with a factor: the full road
        ["deploy", "dev", "--accept-drift"],
        ["deploy", "dev", "--ssh-key", "k"],
        ["deploy", "dev", "--ref"],
        ["deploy", "dev", "--ref="],
        ["history", "--limit=x"],
    ],
)
def test_everything_else_goes_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


def test_a_remote_host_goes_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPLANE_HOST", "deploy@example.com")
    assert parse(["status", "dev"]) is None


def test_named_files_are_what_the_models_name(tmp_path: Path) -> None:
    """The stdlib list (what the short road sends) and the validated config's paths agree,
    and pack sends exactly those files."""
    (tmp_path / "shiplane.toml").write_text(
        """
[app]
name = "shop"
run = "python app.py {port}"

[verify]
checks_file = "checks.toml"

[environments.dev]
branch = "dev"
port = 8001
env_file = "~/dev.env"

[environments.prod]
branch = "main"
port = 8000
listen = "127.0.0.1:8443"
domains = ["shop.example"]
tls = { cert = "tls/chain.pem", key = "tls/key.pem" }
"""
    )
    home = tmp_path / "userhome"
    home.mkdir()
    (home / "dev.env").write_text("A=1\n")
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "chain.pem").write_text("chain")
    (tmp_path / "tls" / "key.pem").write_text("key")
    (tmp_path / "checks.toml").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        loaded = load_config(tmp_path / "shiplane.toml")
        named = named_files(tomllib.loads(loaded.path.read_text()), loaded.repo_dir)
        sent = pack(loaded)["files"]
        by_models = {
            "env/dev.env": loaded.env_file_path("dev"),
            "tls/prod.cert.pem": loaded.tls_file_path("prod", "cert"),
            "tls/prod.key.pem": loaded.tls_file_path("prod", "key"),
            "checks.toml": loaded.checks_file_path(),
        }
    assert {f.key: f.path for f in named} == by_models
    assert sent == {"env/dev.env": "A=1\n", "tls/prod.cert.pem": "chain",
                    "tls/prod.key.pem": "key", "checks.toml": ""}  # fmt: skip


def _answer(head: bytes, body: bytes) -> list[dict]:
    return list(_events(io.BytesIO(head + b"\r\n" + body)))


def test_the_raw_client_reads_chunked_and_plain_answers() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n"
    )
    # One event split across chunks, a heartbeat line, the result last.
    events = b'{"event": "alive"}\n{"event": "result", "result": {"ok": true}}\n'
    body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (events[:25], events[25:]))
    assert _answer(chunked, body + b"0\r\n\r\n") == [
        {"event": "alive"},
        {"event": "result", "result": {"ok": True}},
    ]
    plain = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n" % len(events)
    assert _answer(plain, events)[-1]["result"] == {"ok": True}


def test_the_raw_client_refuses_what_is_not_an_answer() -> None:
    with pytest.raises(NotTaken):  # refused before it ran: the full road may ask again
        _answer(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n", b"{}")
    with pytest.raises(BadAnswer) as cut:  # the server went away mid-chunk: taken, then lost
        _answer(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n", b'40\r\n{"event"')
    assert not isinstance(cut.value, NotTaken)
    with pytest.raises(NotTaken), socket.socket() as sock:  # a line break never reaches the head
        list(post_events(sock, "/ops/status", b"{}", {"x": "a\r\nb: c"}, 1.0))


def test_the_short_road_names_what_the_full_one_does() -> None:
    """What fast_client restates to stay clear of Pydantic (the config loader, the layout)
    and of the server's modules agrees with them."""
    from shiplane.cli import fast_client, fast_deploy
    from shiplane.config import loader, models
    from shiplane.layout import DEFAULT_HOME, Layout, ServerLayout
    from shiplane.server.control import TOKEN_HEADER
    from shiplane.targets.control_client import OPERATION_SILENCE

    assert fast_client.CONFIG_NAME == loader.CONFIG_NAME
    assert Path(fast_client.DEFAULT_HOME) == DEFAULT_HOME
    assert fast_client.TOKEN_HEADER == TOKEN_HEADER
    assert fast_client.SILENCE == OPERATION_SILENCE
    assert fast_deploy.NAME_RE.pattern == models.NAME_RE.pattern
    assert Layout(Path("/x"), "app").repo == Path("/x/apps/app/repo.git")  # as fast_deploy
    layout = ServerLayout(Path("/x"))
    assert (layout.socket, layout.pid, layout.token) == (
        Path("/x") / fast_client.SOCKET,
        Path("/x") / fast_client.PID,
        Path("/x") / fast_client.TOKEN,
    )


@pytest.mark.parametrize("command", ["rollback", "deploy"])
def test_the_short_road_sends_the_arguments_the_typer_command_sends(command: str) -> None:
    """The short road's request carries exactly the Typer command's arguments, with the same
    defaults (a new option there must be added here, or the server sees a difference)."""
    from shiplane.cli import main

    params = inspect.signature(getattr(main, command)).parameters
    client_only = {"passphrase", "ssh_key", "totp", "factor_file", "approver", "json_", "config"}
    sent = {name: p.default for name, p in params.items() if name not in client_only}
    assert sent == DEFAULTS[command] | {"env": inspect.Parameter.empty}  # ENV is required
