"""The HTTP routes of `graft serve`: the V2 health, metadata and infer endpoints, and `/metrics`.

Every refusal is `{"error": "..."}` with a 4xx status; an unexpected failure is a 500 with the same shape, and the
server goes on answering. Bodies are read against `serve.max_body_mb` and `serve.read_timeout_s` before anything
parses them. With a token (`serve.auth_token_file`, GRAFT_SERVE_TOKEN) every endpoint but health and `/metrics`
needs `Authorization: Bearer TOKEN`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from graft import __version__
from graft.serve.protocol import HEADER, ProtocolError


def _json(value: dict, status: int = 200) -> Response:
    return Response(json.dumps(value).encode(), status_code=status, media_type="application/json")


async def _body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body; a 413 as soon as it is known to be over `limit` bytes, a 408 when it stalls `timeout` s."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(413, f"request body of {declared} bytes is over serve.max_body_mb ({limit} bytes)")
    chunks, size, stream = [], 0, request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), timeout)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ProtocolError(408, f"the request body stalled for {timeout:g} s (serve.read_timeout_s)") from None
        size += len(chunk)
        if size > limit:
            raise ProtocolError(413, f"request body is over serve.max_body_mb ({limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


class Counted:
    """ASGI middleware: counts each request by endpoint and status, times it, and turns a crash into a JSON 500.

    A plain ASGI wrapper rather than `@app.middleware("http")`, whose per-request task and stream cost about a
    millisecond on this hardware.
    """

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        """Pass the request on, noting its response status; count and time it when it is done."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), None

        async def sending(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # never a crashed worker: the error is the answer
            if status is not None:  # the response had started: nothing else can be sent
                raise
            status = 500
            await _json({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)(scope, receive, send)
        finally:
            endpoint = scope.get("graft_endpoint") or "other"
            self.metrics.requests.labels(endpoint, str(status or 500)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


def build(server):
    """A FastAPI application serving `server` (a graft.serve.server.Server)."""
    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.get_running_loop().create_task(server.poll()) if server.source else None
        yield
        if task:
            task.cancel()
        server.batcher.close()

    app = FastAPI(title="graft serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    metrics = server.metrics
    limit = int(server.cfg.max_body_mb * 1024 * 1024)

    app.add_middleware(Counted, metrics=metrics)

    @app.exception_handler(ProtocolError)
    async def refused(request: Request, exc: ProtocolError):
        response = _json({"error": exc.message}, exc.status)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="graft"'
        if exc.status == 408:  # the rest of the body may never come: do not wait for it on this connection
            response.headers["Connection"] = "close"
        return response

    @app.exception_handler(404)
    async def not_found(request: Request, exc):
        return _json({"error": f"no such endpoint: {request.method} {request.url.path}"}, 404)

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc):
        return _json({"error": f"{request.method} is not allowed on {request.url.path}"}, 405)

    def tag(request: Request, endpoint: str, protected: bool = True) -> None:
        request.scope["graft_endpoint"] = endpoint
        if protected and server.token is not None:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), server.token.encode()):
                raise ProtocolError(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)")

    @app.get("/v2/health/live")
    async def live(request: Request):
        tag(request, "live", protected=False)
        return _json({"live": True})

    @app.get("/v2/health/ready")
    async def ready(request: Request):
        tag(request, "ready", protected=False)
        return _json({"ready": True, **({"degraded": server.degraded} if server.degraded else {})})

    @app.get("/v2")
    async def server_metadata(request: Request):
        tag(request, "server_metadata")
        return _json({"name": "graft", "version": __version__, "extensions": ["binary_tensor_data"]})

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    async def model_metadata(request: Request, name: str, version: str | None = None):
        tag(request, "model_metadata")
        server.check_model(name, version)
        return _json(server.metadata())

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_ready(request: Request, name: str, version: str | None = None):
        tag(request, "model_ready")
        server.check_model(name, version)
        return _json({"name": name, "ready": True})

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(request: Request, name: str, version: str | None = None):
        tag(request, "infer")
        server.check_model(name, version)
        with server.batcher.arriving():  # a batch being formed may wait for this request
            body = await _body(request, limit, server.cfg.read_timeout_s)
        content, headers = await server.infer(body, request.headers.get(HEADER))
        media = "application/octet-stream" if headers else "application/json"
        return Response(content, media_type=media, headers=headers)

    @app.get("/metrics")
    async def prometheus(request: Request):
        tag(request, "metrics", protected=False)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
