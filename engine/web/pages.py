"""The HTML work queue of ``edirecon serve`` (docs/serve.md): server-rendered pages, session login."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the pages, their session middleware and their static files to ``app``."""
