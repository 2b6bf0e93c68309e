"""The HTTP side: TF Serving's REST routes on Starlette, answered from the batcher.

``GET /v1/models/NAME[/versions/1]``, ``GET .../metadata``, ``POST .../NAME[/versions/1]:predict``,
``GET /healthz``, and the demo page at ``GET /``. Errors are ``{"error": "..."}`` with TF Serving's codes:
400 for a request the signature cannot take, 404 for an unknown model or version, 413 for a body over the
limit, 500 when the model fails (the server keeps serving).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path

import tensorflow as tf
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apps.serving.batching import Batcher
from apps.serving.models import VERSION, Servable
from apps.serving.tensors import BadRequest, decode_request, encode_response

log = logging.getLogger("dlapps.serve")

MODEL_PATH = re.compile(
    r"(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>[A-Za-z]+))?"
)


PAGE = Path(__file__).parent / "page"  # the demo page: plain HTML, CSS and JavaScript, nothing fetched elsewhere
PAGE_FILES = {
    "index.html": "text/html; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
}


DRAIN_BYTES = 64 << 20


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def create_app(servables: dict[str, Servable], batcher: Batcher, max_body_bytes: int) -> Starlette:
    """The server's application: ``servables`` by name, every model call through ``batcher``."""

    async def models(request: Request) -> Response:
        found = MODEL_PATH.fullmatch(request.path_params["rest"])
        if not found:
            raise HttpError(404, f"no such resource: {request.url.path}")
        servable = _servable(servables, found["name"], found["version"], found["label"])
        if request.method == "GET":
            if found["verb"]:
                raise HttpError(405, f":{found['verb']} takes POST")
            return JSONResponse(servable.metadata() if found["metadata"] else servable.status())
        if found["metadata"] or found["verb"] is None:
            raise HttpError(405, "POST goes to .../NAME:predict")
        if found["verb"] != "predict":
            raise HttpError(400, f":{found['verb']} is not served here (it needs tf.Example signatures); use :predict")
        body = await _json_body(request, max_body_bytes)
        return JSONResponse(await _predict(servable, body, batcher))

    async def healthz(request: Request) -> Response:
        stats = batcher.stats
        return JSONResponse(
            {
                "status": "ok",
                "models": sorted(servables),
                "requests": stats.requests,
                "model_calls": stats.calls,
                "largest_batch": stats.largest_batch,
            }
        )

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in PAGE_FILES:  # a fixed set: no path from a request reaches the file system
            raise HttpError(404, f"no such resource: {request.url.path}")
        return Response((PAGE / name).read_bytes(), media_type=PAGE_FILES[name], headers={"Cache-Control": "no-cache"})

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/page/{name}", page),
            Route("/healthz", healthz),
            Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
        ],
        exception_handlers={HttpError: _error_response, 404: _not_found, 405: _not_allowed},
    )
    app.add_middleware(AccessLog)
    return app


def _servable(servables: dict[str, Servable], name: str, version: str | None, label: str | None) -> Servable:
    if name not in servables:
        raise HttpError(404, f"Servable not found for request: Latest({name})")
    if version is not None and version != VERSION:
        raise HttpError(404, f"Servable not found for request: Specific({name}, {version})")
    if label is not None:
        raise HttpError(404, f"Unrecognized servable version label: {label}")
    return servables[name]


async def _json_body(request: Request, limit: int):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        await _drain(request)
        raise HttpError(413, f"the request body has {int(declared):,} bytes; this server takes at most {limit:,}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            await _drain(request)
            raise HttpError(413, f"the request body is over {limit:,} bytes, the most this server takes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
        raise HttpError(400, f"JSON Parse error: {str(err)[:200] or type(err).__name__}") from None


async def _drain(request: Request, most: int = DRAIN_BYTES) -> None:
    """Read and drop the rest of an oversized body, so the client hears the 413 instead of a reset connection
    (closing a socket with unread bytes resets it); past ``most`` bytes the connection is simply closed."""
    dropped = 0
    try:
        async for chunk in request.stream():
            dropped += len(chunk)
            if dropped > most:
                return
    except ClientDisconnect:  # the client went away: nothing to answer
        return


async def _predict(servable: Servable, body, batcher: Batcher) -> dict:
    name = (body.get("signature_name") if isinstance(body, dict) else None) or "serving_default"
    if not isinstance(name, str) or name not in servable.signatures:
        known = ", ".join(sorted(servable.signatures))
        raise HttpError(400, f'Serving signature name: "{name}" not found in signature def; it has: {known}')
    signature = servable.signatures[name]
    try:
        inputs, rows = decode_request(body, signature.inputs)
        outputs = await asyncio.wrap_future(batcher.submit(signature, inputs, signature.batchable))
        return encode_response(outputs, rows)
    except BadRequest as err:
        raise HttpError(400, str(err)) from None
    except tf.errors.InvalidArgumentError as err:  # the graph refused an input (an undecodable image, ...)
        raise HttpError(400, _error_line(err.message)) from None
    except Exception as err:  # the model itself failed: one line here and to the client, and on we go
        line = _error_line(getattr(err, "message", None) or str(err)) or type(err).__name__
        log.error("model %s failed on signature %s: %s", servable.name, name, line)
        raise HttpError(500, f"the model failed: {line}") from None


def _error_line(message: str) -> str:
    """The line that says what went wrong. A graph's error is "Graph execution error", the stack of the
    node, then the op's own message, then "[[{{node ...}}]]": the op's message is the line before that."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if lines and lines[0].startswith("Graph execution error"):
        before_node = [i for i, line in enumerate(lines) if line.startswith("[[")]
        lines = lines[before_node[0] - 1 :] if before_node and before_node[0] > 1 else lines[1:]
    return lines[0][:500] if lines else message[:500]


async def _error_response(request: Request, err: HttpError) -> Response:
    return JSONResponse({"error": str(err)}, status_code=err.status)


async def _not_found(request: Request, err) -> Response:
    return JSONResponse({"error": f"no such resource: {request.url.path}"}, status_code=404)


async def _not_allowed(request: Request, err) -> Response:
    return JSONResponse({"error": f"{request.method} is not allowed on {request.url.path}"}, status_code=405)


class AccessLog:
    """One line per request: method, path, status, latency."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %d %.1f ms", scope["method"], scope["path"], status[0], ms)
