"""The ASGI app of ``edirecon serve``: the HTML work queue (``pages``) and the API under ``/api/v1``
(``api``), both reading and writing the store through ``engine.workflow`` as the CLI does."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread
from fastapi import FastAPI, Request, Response

from edirecon.engine.config import Config
from edirecon.engine.logging import get_logger
from edirecon.engine.store.connection import Store, open_store

log = get_logger("edirecon.serve")

#: the connections the app's pool keeps, and as many more at a busy moment
SERVE_CONNECTIONS = 20
#: the threads that answer requests at once (the store's calls run in threads; Starlette's default
#: is 40).  Measured (bench/bench_pages.py, 20 users, 1,000,000 claims, 2 cores): with 40 threads an
#: action waited behind readers for the interpreter's lock while it held the workflow's lock, 1.45 s
#: at the 95th percentile on PostgreSQL; with 8, 0.51 s, and every page faster too
SERVE_THREADS = 8


async def _limit_threads() -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = SERVE_THREADS


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
    # one or two connections per request being answered (SERVE_THREADS at once), and room to spare
    app.state.served = Served(open_store(db_url, connections=SERVE_CONNECTIONS), db_url, config, secret)
    app.include_router(api.router)
    pages.install(app)

    app.router.on_startup.append(_limit_threads)

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
