"""The JSON API under ``/api/v1`` for downstream billing systems (docs/api.md)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
