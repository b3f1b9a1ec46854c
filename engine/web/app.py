"""The ASGI app of ``edirecon serve``: the HTML work queue (``pages``) and the API under ``/api/v1``
(``api``), both reading and writing the store through ``engine.workflow`` as the CLI does."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from fastapi import FastAPI, Request, Response

from edirecon.engine.config import Config
from edirecon.engine.store.connection import Store, open_store

log = structlog.get_logger("edirecon.serve")

#: the connections the app's pool keeps, and as many more at a busy moment
SERVE_CONNECTIONS = 20


@dataclass
class Served:
    """What every request reads: the store, the configuration, and the session secret."""

    store: Store
    db_url: str
    config: Config
    secret: str


def create_app(db_url: str, config: Config, secret: str) -> FastAPI:
    """The app over the store at ``db_url``; ``secret`` signs session cookies and CSRF tokens."""
    # deferred: the routers import this module's Served
    from edirecon.engine.web import api, pages

    app = FastAPI(title="edirecon", openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    # one or two connections per request being answered: the threads of the pool (40) at most
    app.state.served = Served(open_store(db_url, connections=SERVE_CONNECTIONS), db_url, config, secret)
    app.include_router(api.router)
    pages.install(app)

    @app.middleware("http")
    async def request_event(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """One ``request`` event per request (seen with ``serve --verbose``): the method, the route's
        template (``/refunds/{refund_id}``, never the path or query given, which may carry text from
        outside), the status and the milliseconds; no token, cookie or form value."""
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", None) or "(no route)"
        log.info("request", method=request.method, route=template, status=response.status_code, ms=round((time.perf_counter() - started) * 1000, 1))
        return response

    return app
