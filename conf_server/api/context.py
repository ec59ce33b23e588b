"""What every request handler reaches: the store, live control, auth, events, files, settings.

``create_app`` builds one ``ApiContext`` and keeps it in ``app.state``; handlers get it and the
authenticated ``Principal`` through the FastAPI dependencies below. Store exceptions become
HTTP errors here (``store_errors``): not found → 404 on a read, 422 on a write that names a
missing object; a conflict → 409; a refused value → 422.

``OwnerCache`` answers "who owns room N, and what is their name" for the live endpoints without
reading every room and subscriber per request (that read was most of a meeting list's cost).
The map is read at most once per ``OWNERS_FRESH`` seconds, by one request while the others
wait for it, and dropped at once when the API itself writes a room or a subscriber (the app's
guard middleware calls ``forget``); a change made outside the API (``conf-server provision``,
another node) shows within ``OWNERS_FRESH`` seconds. A read that overlaps a ``forget`` is not
kept, so a stale map never outlives the write that made it stale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

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


OWNERS_FRESH: Final = 2.0
Owners = Mapping[str, tuple[str | None, str]]
"""meeting number → (owner's sid or None, owner's display name)."""


class OwnerCache:
    """Room owners, read from the store at most every ``OWNERS_FRESH`` s (module docstring)."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._owners: Owners | None = None
        self._until = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self.reads = 0

    async def get(self) -> Owners:
        if self._owners is not None and self._clock() < self._until:
            return self._owners
        async with self._lock:  # one store read serves every request waiting here
            if self._owners is not None and self._clock() < self._until:
                return self._owners
            generation, started = self._generation, self._clock()
            owners = await self._read()
            if generation == self._generation:
                self._owners, self._until = owners, started + OWNERS_FRESH
            return owners

    async def _read(self) -> Owners:
        self.reads += 1
        rooms = (await self._store.list_rooms()).items
        people = {s.sid: s for s in (await self._store.list_subscribers()).items}
        out: dict[str, tuple[str | None, str]] = {}
        for r in rooms:
            person = people.get(r.subscriber_sid or "")
            name = f"{person.first_name} {person.last_name}".strip() if person else ""
            out[str(r.meeting_number)] = (r.subscriber_sid, name)
        return out

    def forget(self) -> None:
        """A room or subscriber changed: the next ``get`` reads the store."""
        self._owners = None
        self._generation += 1


@dataclass(slots=True)
class ApiContext:
    store: Store
    live: LiveControl | None
    auth: Authenticator
    settings: ApiSettings
    owners: OwnerCache
    hub: Any = None  # events.EventHub, set by create_app (typed there; avoids an import cycle)


MAX_ID = 2**31 - 1
Id = Annotated[int, PathArg(ge=0, le=MAX_ID)]
"""An id or number in a path: bounded so the database never sees an integer it cannot hold."""


async def get_context(request: Request) -> ApiContext:
    """The app's context. ``async`` so FastAPI calls it in the loop: a plain function
    dependency goes through the thread pool on every request (10 % of the server's CPU at 500
    requests/s, measured with py-spy)."""
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
