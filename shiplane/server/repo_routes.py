"""The control API's git routes: commits reach the server's repository, and its env branches
reach the client, over the control socket (no filesystem access to the server needed).

    POST /apps/{app}/commits          {"shas": [...]} → {"missing": [...], "heads": [...]}
    POST /apps/{app}/bundle           a git bundle (body, size-capped) → {"received": [...]}
    POST /apps/{app}/branches/bundle  {"have": [...]} → a bundle of the env branches (204: none
                                      needed)

The git work runs in a worker thread (``shiplane.gitops.bundles``); every refusal is a 4xx
with a message that says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shiplane.config.models import NAME_RE
from shiplane.errors import ShiplaneError
from shiplane.gitops import bundles
from shiplane.layout import ServerLayout


def _repo(layout: ServerLayout, request: Request) -> Path | None:
    app = request.path_params["app"]
    if not NAME_RE.match(app):
        return None
    app_layout = layout.app(app)
    app_layout.ensure()
    return app_layout.repo


def _refused(exc: ShiplaneError, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": exc.message, "next_action": exc.next_action}, status_code=status)


def repo_routes(layout: ServerLayout) -> list[Route]:
    async def commits(request: Request) -> Response:
        repo = _repo(layout, request)
        body: Any = await request.json()
        shas = body.get("shas") if isinstance(body, dict) else None
        if repo is None or not isinstance(shas, list):
            return JSONResponse({"error": "malformed request"}, status_code=400)
        try:
            status = await asyncio.to_thread(bundles.server_status, repo, shas)
        except ShiplaneError as exc:
            return _refused(exc, 500)
        return JSONResponse(status)

    async def bundle(request: Request) -> Response:
        repo = _repo(layout, request)
        if repo is None:
            return JSONResponse({"error": "malformed request"}, status_code=400)
        cap = bundles.max_bundle_bytes()
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return _too_large(int(declared), cap)
        fd, name = tempfile.mkstemp(prefix=".bundle-", dir=repo.parent)
        path = Path(name)
        try:
            size = 0
            with os.fdopen(fd, "wb") as handle:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > cap:
                        return _too_large(size, cap)
                    handle.write(chunk)
            try:
                received = await asyncio.to_thread(bundles.receive, repo, path)
            except ShiplaneError as exc:
                return _refused(exc)
            return JSONResponse({"received": received})
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def branches_bundle(request: Request) -> Response:
        repo = _repo(layout, request)
        body: Any = await request.json()
        have = body.get("have") if isinstance(body, dict) else None
        if repo is None or not isinstance(have, list):
            return JSONResponse({"error": "malformed request"}, status_code=400)
        fd, name = tempfile.mkstemp(prefix=".branches-", suffix=".bundle", dir=repo.parent)
        os.close(fd)
        path = Path(name)
        try:
            made = await asyncio.to_thread(bundles.branches_bundle, repo, have, path)
            if not made:
                return Response(status_code=204)
            return Response(path.read_bytes(), media_type="application/x-git-bundle")
        except ShiplaneError as exc:
            return _refused(exc, 500)
        finally:
            path.unlink(missing_ok=True)

    return [
        Route("/apps/{app}/commits", commits, methods=["POST"]),
        Route("/apps/{app}/bundle", bundle, methods=["POST"]),
        Route("/apps/{app}/branches/bundle", branches_bundle, methods=["POST"]),
    ]


def _too_large(size: int, cap: int) -> JSONResponse:
    return JSONResponse(
        {
            "error": f"the bundle is too large ({size} bytes; this server takes at most {cap})",
            "next_action": "deploy from a repository without large files in its history, or "
            "raise SHIPLANE_MAX_BUNDLE_BYTES for the server",
        },
        status_code=413,
    )
