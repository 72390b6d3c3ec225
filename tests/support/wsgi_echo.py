"""A WSGI app for gunicorn's gthread worker (keep-alive upstream connections): POST answers 201
with what it read, GET answers its path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if environ["REQUEST_METHOD"] == "POST":
        body = environ["wsgi.input"].read()
        payload = f"posted:{path}:{len(body)}".encode()
        status = "201 Created"
    else:
        payload = f"got:{path}".encode()
        status = "200 OK"
    start_response(status, [("content-type", "text/plain"), ("content-length", str(len(payload)))])
    return [payload]
