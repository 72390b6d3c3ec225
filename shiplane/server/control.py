"""The control API: JSON over a Unix socket, every request carrying the server token."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from shiplane import __version__
from shiplane.errors import ShiplaneError
from shiplane.operations.session import Presented
from shiplane.server.core import EnvKey, PortInUse, ServerCore
from shiplane.server.operations import OperationRunner
from shiplane.server.repo_routes import repo_routes
from shiplane.server.watch import WatchSettings
from shiplane.server.worker_routes import worker_routes
from shiplane.state.db import StateDB
from shiplane.state.tokens import TokenStore
from shiplane.targets.base import InstanceSpec
from shiplane.targets.health import HealthPolicy

TOKEN_HEADER = "x-shiplane-token"
# A deployment id names its log file: nothing that could leave the logs directory.
DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# An operation request is a few arguments and the config (at most snapshot.MAX_CONFIG_BYTES);
# anything bigger is a mistake or an attack.
MAX_OPERATION_BODY = 512 * 1024


# What a client with an issued token (agent or person) may ask for: operations, and sending
# commits (bundles land under refs/shiplane/incoming only). Everything else (starting
# instances, switching traffic) is the server's own pipeline talking to itself.
CLIENT_PATHS = re.compile(r"^/(ping|status|ops/[^/]+|apps/[^/]+/(commits|bundle|branches/bundle))$")


class TokenRequired(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str, host_db: Path) -> None:
        super().__init__(app)
        self.token = token
        self.host_db = host_db

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        supplied = request.headers.get(TOKEN_HEADER, "")
        if supplied and hmac.compare_digest(supplied, self.token):
            return await call_next(request)
        if supplied and CLIENT_PATHS.match(request.url.path) and self._issued(supplied):
            # The operation checks the token again, for its role: this only opens the door.
            return await call_next(request)
        return JSONResponse({"error": "missing or wrong token"}, status_code=401)

    def _issued(self, supplied: str) -> bool:
        if not self.host_db.is_file():
            return False
        db = StateDB(self.host_db)
        try:
            record = TokenStore(db).verify(supplied)
        finally:
            db.close()
        return record is not None and not record.revoked


def _key(request: Request) -> EnvKey:
    return EnvKey(request.path_params["app"], request.path_params["env"])


def build_control_app(core: ServerCore, stop: asyncio.Event, runner: OperationRunner) -> Starlette:
    async def ping(_: Request) -> Response:
        return JSONResponse({"ok": True, "pid": os.getpid(), "version": __version__})

    async def status(_: Request) -> Response:
        return JSONResponse(await core.status())

    async def start_instance(request: Request) -> Response:
        await core.restored.wait()
        body = await request.json()
        try:
            instance = await core.start_instance(InstanceSpec.from_stored(body["spec"]))
        except (ShiplaneError, OSError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"cannot start instance: {exc}"}, status_code=400)
        return JSONResponse(instance.as_instance().model_dump(mode="json"))

    async def instance_info(request: Request) -> Response:
        instance = core.instances.get(request.path_params["instance_id"])
        if instance is None:
            return JSONResponse({"error": "no such instance"}, status_code=404)
        return JSONResponse(instance.as_instance().model_dump(mode="json"))

    async def instance_health(request: Request) -> Response:
        body = await request.json()
        try:
            policy = HealthPolicy(**body["policy"])
            outcome = await core.wait_healthy(
                request.path_params["instance_id"], str(body["path"]), policy
            )
        except KeyError:
            return JSONResponse({"error": "no such instance"}, status_code=404)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": f"bad health request: {exc}"}, status_code=400)
        return JSONResponse(outcome.to_dict())

    async def env_instances(request: Request) -> Response:
        listed = [i.as_instance().model_dump(mode="json") for i in core.instances_of(_key(request))]
        return JSONResponse({"instances": listed})

    async def stop_instance(request: Request) -> Response:
        stopped = await core.stop_instance(request.path_params["instance_id"])
        return JSONResponse({"stopped": stopped})

    async def switch(request: Request) -> Response:
        await core.restored.wait()
        body = await request.json()
        try:
            previous = core.switch(
                _key(request), int(body["port"]), body.get("instance_id"), body.get("info")
            )
        except KeyError:
            return JSONResponse({"error": "no such instance"}, status_code=404)
        except PortInUse as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except ShiplaneError as exc:  # the door's own certificate files do not load
            return JSONResponse({"error": exc.message}, status_code=409)
        await core.confirmed(_key(request))
        return JSONResponse({"previous": previous})

    async def drain(request: Request) -> Response:
        await core.restored.wait()
        body = await request.json()
        key, instance_id, timeout = _key(request), body["instance_id"], float(body["timeout"])
        deployment_id = body.get("deployment_id")
        if deployment_id is not None and not DEPLOYMENT_ID.fullmatch(str(deployment_id)):
            return JSONResponse({"error": "malformed deployment_id"}, status_code=400)
        standby = body.get("standby")
        try:
            task = core.drain_later(
                key, instance_id, timeout, deployment_id, float(standby) if standby else None
            )
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        if body.get("background"):
            return JSONResponse({"drained": None, "background": True})
        # shield: a client that goes away does not cut the drain short.
        return JSONResponse({"drained": await asyncio.shield(task), "background": False})

    async def watch(request: Request) -> Response:
        """Watch what serves now, after a deploy's switch (shiplane.server.watch)."""
        await core.restored.wait()
        body = await request.json()
        key = _key(request)
        deployment_id = str(body.get("deployment_id"))
        if not DEPLOYMENT_ID.fullmatch(deployment_id):
            return JSONResponse({"error": "malformed deployment_id"}, status_code=400)
        try:
            settings = WatchSettings.from_dict(body["settings"])
            started = await core.watches.start(
                key.app,
                key.env,
                deployment_id,
                str(body["instance_id"]),
                body.get("previous") or None,
                settings,
            )
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"cannot watch: {exc}"}, status_code=409)
        except ShiplaneError as exc:  # the app's state.db cannot record it
            return JSONResponse({"error": f"cannot watch: {exc.message}"}, status_code=409)
        return JSONResponse(started)

    async def claim_standby(request: Request) -> Response:
        """The env's standby, taken off standby to serve ``spec`` (a rollback), if it can."""
        await core.restored.wait()
        body = await request.json()
        instance, why = await core.standbys.claim(_key(request), dict(body["spec"]))
        found = instance.as_instance().model_dump(mode="json") if instance else None
        pid = instance.process.pid if instance and instance.process else None
        return JSONResponse({"instance": found, "pid": pid, "reason": why})

    async def keep_standby(request: Request) -> Response:
        body = await request.json()
        kept = core.keep_standby(_key(request), str(body["instance_id"]), float(body["ttl"]))
        return JSONResponse({"kept": kept})

    async def hold(request: Request) -> Response:
        """Park new requests (bounded by ``timeout``), then wait until the in-flight ones
        finished (at most ``timeout`` too): a schema change runs after this answers."""
        await core.restored.wait()
        body = await request.json()
        door = core.frontdoors.get(_key(request))
        if door is None:
            return JSONResponse({"held": False, "settled": True})
        timeout = float(body["timeout"])
        door.hold(timeout)
        await door.confirmed()
        deadline = time.monotonic() + timeout
        while any(door.stats().inflight.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return JSONResponse({"held": True, "settled": not any(door.stats().inflight.values())})

    async def release(request: Request) -> Response:
        await core.restored.wait()
        door = core.frontdoors.get(_key(request))
        if door is not None:
            door.release()
            await door.confirmed()
        return JSONResponse({"released": door is not None})

    async def maintenance(request: Request) -> Response:
        await core.restored.wait()
        body = await request.json()
        applied = core.maintenance(_key(request), bool(body["on"]), body.get("bypass"))
        await core.confirmed(_key(request))
        return JSONResponse({"applied": applied})

    async def active(request: Request) -> Response:
        await core.restored.wait()
        door = core.frontdoors.get(_key(request))
        upstream = door.active() if door else None
        return JSONResponse(
            {
                "instance_id": upstream.instance_id if upstream else None,
                "info": upstream.info if upstream else None,
                "port": door.stats().port if door else None,
            }
        )

    async def renew_certificates(request: Request) -> Response:
        await core.restored.wait()
        try:
            hosts = await core.renew_certificates(_key(request))
        except KeyError:
            return JSONResponse({"error": "no HTTPS front door for this env"}, status_code=404)
        except ShiplaneError as exc:
            return JSONResponse({"error": exc.message}, status_code=502)
        return JSONResponse({"hosts": hosts})

    async def restore(request: Request) -> Response:
        try:
            instance_id = await core.restore_env(_key(request))
        except (ShiplaneError, PortInUse, OSError) as exc:
            return JSONResponse({"error": f"restore failed: {exc}"}, status_code=500)
        return JSONResponse({"instance_id": instance_id})

    async def operation(request: Request) -> Response:
        await core.restored.wait()
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_OPERATION_BODY:
                return JSONResponse({"error": "request body too large"}, status_code=413)
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "the body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        name = request.path_params["name"]
        peer = Presented(
            peer_uid=getattr(request.state, "peer_uid", None),
            server_token=hmac.compare_digest(request.headers.get(TOKEN_HEADER, ""), core.token),
        )
        return StreamingResponse(runner.stream(name, body, peer), media_type="application/x-ndjson")

    async def shutdown(_: Request) -> Response:
        stop.set()
        return JSONResponse({"stopping": True})

    routes = [
        Route("/ping", ping),
        Route("/status", status),
        Route("/instances", start_instance, methods=["POST"]),
        Route("/instances/{instance_id}", instance_info),
        Route("/instances/{instance_id}/stop", stop_instance, methods=["POST"]),
        Route("/instances/{instance_id}/health", instance_health, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/active", active),
        Route("/apps/{app}/envs/{env}/instances", env_instances),
        Route("/apps/{app}/envs/{env}/switch", switch, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/drain", drain, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/restore", restore, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/tls/renew", renew_certificates, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/hold", hold, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/watch", watch, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/standby/claim", claim_standby, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/standby/keep", keep_standby, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/release", release, methods=["POST"]),
        Route("/apps/{app}/envs/{env}/maintenance", maintenance, methods=["POST"]),
        Route("/ops/{name}", operation, methods=["POST"]),
        Route("/shutdown", shutdown, methods=["POST"]),
        *repo_routes(core.layout),
        *worker_routes(core),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(TokenRequired, token=core.token, host_db=core.layout.state_db)],
    )
