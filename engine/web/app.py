"""The ASGI app of ``edirecon serve``: the HTML work queue (``pages``) and the API under ``/api/v1``
(``api``), both reading and writing the store through ``engine.workflow`` as the CLI does."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from edirecon.engine.config import Config
from edirecon.engine.store.connection import Store, open_store


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
    app.state.served = Served(open_store(db_url), db_url, config, secret)
    app.include_router(api.router)
    pages.install(app)
    return app
