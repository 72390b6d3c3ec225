"""Commits to and from the server's repository over the control socket (enforced mode: clients
may not touch the repository itself). The token middleware has let the request in; any role may
send commits, since only an operation decides what they become."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from shiplane.errors import ShiplaneError
from shiplane.gitops import bundles, server_repo
from shiplane.layout import ServerLayout

# A bundle is a repository's history: generous, but bounded so a client cannot fill the disk.
MAX_BUNDLE = 2 * 1024**3
APP = re.compile(r"^[a-z][a-z0-9_-]*$")


def code_routes(layout: ServerLayout) -> list[Route]:
    async def receive(request: Request) -> Response:
        app = request.path_params["app"]
        shas = request.query_params.getlist("sha")
        if not APP.match(app):
            return JSONResponse({"error": f"not an app name: {app!r}"}, status_code=400)
        fd, name = tempfile.mkstemp(prefix=".bundle-", dir=layout.root)
        bundle = Path(name)
        try:
            size = 0
            with os.fdopen(fd, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_BUNDLE:
                        return JSONResponse({"error": "bundle too large"}, status_code=413)
                    handle.write(chunk)
            repo = layout.app(app).repo
            await asyncio.to_thread(_receive, repo, bundle, shas)
        except ShiplaneError as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        finally:
            bundle.unlink(missing_ok=True)
        return JSONResponse({"received": shas})

    async def send(request: Request) -> Response:
        app = request.path_params["app"]
        repo = layout.app(app).repo
        if not APP.match(app) or not (repo / "HEAD").is_file():
            return JSONResponse({"error": f"no repository for app {app!r}"}, status_code=404)
        fd, name = tempfile.mkstemp(prefix=".bundle-", dir=layout.root)
        os.close(fd)
        bundle = Path(name)
        try:
            if not await asyncio.to_thread(bundles.branches, repo, bundle):
                bundle.unlink()
                return Response(status_code=204)
        except ShiplaneError as exc:
            bundle.unlink(missing_ok=True)
            return JSONResponse({"error": exc.message}, status_code=500)

        async def cleanup() -> None:
            with contextlib.suppress(FileNotFoundError):
                bundle.unlink()

        return FileResponse(bundle, background=BackgroundTask(cleanup))

    return [
        Route("/apps/{app}/commits", receive, methods=["POST"]),
        Route("/apps/{app}/branches", send),
    ]


def _receive(repo: Path, bundle: Path, shas: list[str]) -> None:
    # No shiplane.toml recorded for the hooks: nobody pushes to this repository but the server
    # user, and a client must not choose what file its hooks would read.
    server_repo.ensure(repo)
    bundles.receive(repo, bundle, shas)
