"""What every request handler reaches: the store, live control, auth, events, files, settings.

``create_app`` builds one ``ApiContext`` and keeps it in ``app.state``; handlers get it and the
authenticated ``Principal`` through the FastAPI dependencies below. Store exceptions become
HTTP errors here (``store_errors``): not found → 404 on a read, 422 on a write that names a
missing object; a conflict → 409; a refused value → 422.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi import Path as PathArg

from conf_server.api.auth import Authenticator, Principal
from conf_server.api.errors import (
    ConflictApiError,
    NotFoundApiError,
    ValidationApiError,
)
from conf_server.api.query import Known, ListQuery, parse_item_fields
from conf_server.domain.live import LiveControl
from conf_server.store import ConflictError, InvalidDataError, NotFoundError, Store


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Settings of the API beyond the listener address.

    ``admin_login``/``admin_password``: the first administrator (created at start when absent;
    the environment variables ``CONF_SERVER_ADMIN_LOGIN``/``…_PASSWORD`` fill them when empty).
    ``data_dir``: media files live under ``data_dir/files/<subscriber sid>/``.
    ``webhook_secret``: the HMAC-SHA256 key of event signatures (random per process if empty,
    which receivers then cannot verify). ``fallback_url``: where an event goes when a
    subscriber's callback URL fails for good. ``event_window``: events kept for SSE resume.
    """

    admin_login: str = ""
    admin_password: str = field(default="", repr=False)
    data_dir: Path = Path("var")
    webhook_secret: str = field(default="", repr=False)
    fallback_url: str = ""
    event_window: int = 1000
    webhook_attempts: int = 5
    webhook_first_delay: float = 0.5
    webhook_max_delay: float = 30.0
    webhook_timeout: float = 5.0
    max_file_bytes: int = 10 * 1024 * 1024


@dataclass(slots=True)
class ApiContext:
    store: Store
    live: LiveControl | None
    auth: Authenticator
    settings: ApiSettings
    hub: Any = None  # events.EventHub, set by create_app (typed there; avoids an import cycle)


MAX_ID = 2**31 - 1
Id = Annotated[int, PathArg(ge=0, le=MAX_ID)]
"""An id or number in a path: bounded so the database never sees an integer it cannot hold."""


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


async def get_principal(request: Request, ctx: Ctx) -> Principal:
    principal = await ctx.auth.authenticate(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


Who = Annotated[Principal, Depends(get_principal)]


def list_query(request: Request, known: Known) -> ListQuery:
    return ListQuery.parse(request.query_params, known)


def item_query(request: Request, known: Known) -> ListQuery:
    return parse_item_fields(request.query_params, known)


@contextmanager
def store_errors(what: str, *, writing: bool = False) -> Iterator[None]:
    """Map the store's exceptions to HTTP errors (see the module docstring)."""
    try:
        yield
    except NotFoundError as exc:
        if writing:
            raise ValidationApiError.one(None, str(exc)) from exc
        raise NotFoundApiError(what) from exc
    except ConflictError as exc:
        raise ConflictApiError(str(exc)) from exc
    except InvalidDataError as exc:
        raise ValidationApiError.one(None, str(exc)) from exc
