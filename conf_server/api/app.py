"""The REST API application: ``create_app`` (FastAPI) and ``start_api`` (uvicorn in this loop).

Sources: CarrierX Conference API v1 (``seeds/004_…``: base path ``/conference/v1``,
status codes and error bodies); RFC 9110 §15.5.16 (415 Unsupported Media Type); the WHATWG
Server-sent events section for ``GET /events``.

Theory of operation
-------------------
``create_app(store, live, settings)`` mounts every router under ``/conference/v1`` with the
OpenAPI document at ``/conference/v1/openapi.json`` and the docs page at
``/conference/v1/docs``. Exception handlers turn every error into the spec's bodies: our
``ApiError``s as they are; FastAPI's validation errors as 400 for malformed JSON, 404 for a path
argument of the wrong type and 422 otherwise; Starlette's routing errors (404, 405) with a
CarrierX body. A plain ASGI middleware answers 415 before any handler runs when a body that
must be JSON has another media type, and drops the room-owner cache after writes to rooms or
subscribers. Nothing here logs a request's headers or body (credentials live there).

``start_api(app, host, port)`` runs ``uvicorn.Server`` as a task of the running loop (the SIP
and media code share the loop; handlers only await the store and do short work) and returns
an ``ApiHandle`` with the bound ``port`` and ``await stop()``. The app's lifespan creates the
first administrator and binds the event hub to ``LiveControl.subscribe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Final, cast

import uvicorn
from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from conf_server.api import routes_live, routes_numbers, routes_rooms, routes_subscribers
from conf_server.api.auth import ADMIN_LOGIN_ENV, ADMIN_PASSWORD_ENV, Authenticator, ensure_admin
from conf_server.api.context import ApiContext, ApiSettings, Ctx, OwnerCache, Who
from conf_server.api.errors import (
    ApiError,
    BadJsonError,
    BadQueryError,
    FieldError,
    NotFoundApiError,
    UnsupportedMediaError,
    ValidationApiError,
)
from conf_server.api.events import EventHub
from conf_server.api.files import FileStore
from conf_server.api.webhooks import Deliverer, RetryPolicy
from conf_server.domain.live import LiveControl
from conf_server.logs import get_logger
from conf_server.store import Store

BASE: Final = "/conference/v1"
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OWNERSHIP: Final = re.compile(r"/(meetingRooms|subscribers)(/|$)")
log = get_logger("api")


async def _api_error(request: Request, exc: Exception) -> Response:
    exc = cast(ApiError, exc)  # registered for ApiError only
    headers = {"WWW-Authenticate": 'Basic realm="conf-server"'} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _validation_to_api(exc: RequestValidationError) -> ApiError:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return BadJsonError()
    first_place = errors[0]["loc"][0] if errors and errors[0].get("loc") else "body"
    if first_place == "path":
        return NotFoundApiError("item")
    fields = [
        FieldError(".".join(str(p) for p in e.get("loc", ())[1:]) or None, str(e.get("msg", "")))
        for e in errors
    ]
    if first_place in ("query", "header"):
        return BadQueryError(fields[0].field or "query", fields[0].message)
    return ValidationApiError(*fields)


async def _validation_error(request: Request, exc: Exception) -> Response:
    return await _api_error(request, _validation_to_api(cast(RequestValidationError, exc)))


async def _http_error(request: Request, exc: Exception) -> Response:
    exc = cast(StarletteHTTPException, exc)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, str(exc.detail))
    body = {"message": message, "errors": [FieldError(None, str(exc.detail)).body()]}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def _needs_json(request: Request) -> bool:
    if request.method not in _BODY_METHODS:
        return False
    if request.method == "POST" and request.url.path.endswith("/files"):
        return False  # uploads are multipart/form-data
    length = request.headers.get("content-length")
    return bool(request.headers.get("transfer-encoding")) or (length is not None and length != "0")


class _Guard:
    """Plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs a task and a stream
    per request): answers 415 before any handler runs when a body that must be JSON has
    another media type, and drops the owner cache after a write to rooms or subscribers."""

    def __init__(self, app: ASGIApp, owners: OwnerCache) -> None:
        self.app = app
        self.owners = owners

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if _needs_json(request):
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                error = UnsupportedMediaError()
                await JSONResponse(error.body(), status_code=error.status)(scope, receive, send)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            if request.method in _BODY_METHODS and _OWNERSHIP.search(request.url.path):
                self.owners.forget()


def _settings_from_env(settings: ApiSettings) -> ApiSettings:
    return replace(
        settings,
        admin_login=settings.admin_login or os.environ.get(ADMIN_LOGIN_ENV, ""),
        admin_password=settings.admin_password or os.environ.get(ADMIN_PASSWORD_ENV, ""),
    )


def create_app(
    store: Store, live: LiveControl | None, settings: ApiSettings | None = None
) -> FastAPI:
    """The REST API over ``store`` and (when a bridge runs) ``live``."""
    settings = _settings_from_env(settings or ApiSettings())
    secret = settings.webhook_secret.encode() or secrets.token_bytes(32)
    policy = RetryPolicy(
        settings.webhook_attempts,
        settings.webhook_first_delay,
        settings.webhook_max_delay,
        settings.webhook_timeout,
    )
    ctx = ApiContext(store, live, Authenticator(store), settings, OwnerCache(store))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = EventHub(
            store, Deliverer(secret, policy, settings.fallback_url), settings.event_window
        )
        hub.bind_loop()
        ctx.hub = hub
        unsubscribe = live.subscribe(hub.on_event) if live is not None else None
        if settings.admin_login and settings.admin_password:
            await ensure_admin(store, settings.admin_login, settings.admin_password)
            log.info("api.admin_ready", login=settings.admin_login)
        try:
            yield
        finally:
            if unsubscribe is not None:
                unsubscribe()
            await hub.close()

    app = FastAPI(
        title="conf-server Conference API",
        version="1",
        openapi_url=f"{BASE}/openapi.json",
        docs_url=f"{BASE}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.files = FileStore(settings.data_dir / "files")
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(_Guard, owners=ctx.owners)
    for module in (routes_numbers, routes_rooms, routes_subscribers, routes_live):
        app.include_router(module.router, prefix=BASE)
    app.add_api_route(f"{BASE}/events", _events, methods=["GET"], response_class=StreamingResponse)
    return app


async def _events(
    request: Request,
    ctx: Ctx,
    who: Who,
    meeting_number: Annotated[int | None, Query(alias="meetingNumber")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-Sent Events of live meetings; resume with ``Last-Event-ID``."""
    last: int | None = None
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise BadQueryError("Last-Event-ID", "must be an event id (digits)")
        last = int(last_event_id)
    rooms: frozenset[str] | None = None
    if meeting_number is not None:
        rooms = frozenset({str(meeting_number)})
    if not who.live_operator:
        own = await ctx.store.get_subscriber(who.sid)
        mine = frozenset(str(n) for n in own.meeting_numbers)
        rooms = mine if rooms is None else rooms & mine
    hub: EventHub = ctx.hub
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        hub.stream(rooms, last), media_type="text/event-stream", headers=headers
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the server process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class ApiHandle:
    """A running API server: ``port`` it listens on; ``await stop()`` to end it."""

    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind here, so a port in use is an ``OSError`` for the caller (uvicorn would exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on accepted sockets whose
    # proto says TCP. Without it uvicorn's two writes per response (head, body) met Nagle and
    # the client's delayed ACK: every keep-alive request took 44 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


async def start_api(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8080, *, sock: socket.socket | None = None
) -> ApiHandle:
    """Serve ``app`` on ``host:port`` (0: any free port), or on ``sock`` bound earlier."""
    if sock is None:
        sock = listen_socket(host, port)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = _EmbeddedServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            task.result()  # re-raises a start-up error
            raise RuntimeError("the API server stopped during start-up")
        await asyncio.sleep(0.01)
    bound = int(sock.getsockname()[1])
    log.info("api.listening", host=host, port=bound)
    return ApiHandle(server, task, bound)
