"""Control routes for an environment's workers (the server's pipeline talking to itself)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shiplane.server.core import EnvKey, ServerCore
from shiplane.targets.base import InstanceSpec

BASE = "/apps/{app}/envs/{env}/workers"


def worker_routes(core: ServerCore) -> list[Route]:
    def key(request: Request) -> EnvKey:
        return EnvKey(request.path_params["app"], request.path_params["env"])

    async def listing(request: Request) -> Response:
        return JSONResponse(core.workers.listing(key(request)))

    async def replace(request: Request) -> Response:
        await core.restored.wait()
        body = await request.json()
        try:
            spec = InstanceSpec.from_stored(body["spec"])
            grace = float(body["grace"])
            fresh = bool(body.get("fresh", False))
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"bad workers request: {exc}"}, status_code=400)
        try:
            answer = await core.workers.replace(key(request), spec, grace, fresh)
        except OSError as exc:
            return JSONResponse({"error": f"cannot start a worker: {exc}"}, status_code=400)
        return JSONResponse(answer)

    async def pause(request: Request) -> Response:
        await core.restored.wait()
        return JSONResponse({"stopped": await core.workers.pause(key(request))})

    async def resume(request: Request) -> Response:
        await core.restored.wait()
        try:
            started = await core.workers.resume(key(request))
        except OSError as exc:
            return JSONResponse({"error": f"cannot start a worker: {exc}"}, status_code=400)
        return JSONResponse({"started": started})

    async def scale(request: Request) -> Response:
        await core.restored.wait()
        body = await request.json()
        try:
            spec = InstanceSpec.from_stored(body["spec"])
            workers = await core.workers.scale(key(request), spec)
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"bad scale request: {exc}"}, status_code=400)
        except OSError as exc:
            return JSONResponse({"error": f"cannot start a worker: {exc}"}, status_code=400)
        return JSONResponse({"workers": workers})

    return [
        Route(BASE, listing),
        Route(BASE, replace, methods=["POST"]),
        Route(f"{BASE}/pause", pause, methods=["POST"]),
        Route(f"{BASE}/resume", resume, methods=["POST"]),
        Route(f"{BASE}/scale", scale, methods=["POST"]),
    ]
