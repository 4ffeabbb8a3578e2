"""GET /health: liveness and database reachability, no token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from api.db import Conn
from bondwatch import __version__

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request, conn: Conn) -> dict[str, Any]:
    await conn.execute("SELECT 1")
    return {"status": "ok", "version": __version__, "site": request.app.state.settings.site, "database": "ok"}
