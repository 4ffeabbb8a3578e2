"""The FastAPI application: routers under /api/v1, Prometheus metrics on /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from prometheus_client import make_asgi_app

from api.db import make_pool
from api.errors import install_handlers
from api.routers import alerts, devices, gates, geofences, health, profiles, release_notes, sensors, tags, vehicles
from api.routers import reports as reports_router
from api.routers import trace as trace_router
from api.security import install_security
from api.settings import ApiSettings
from bondwatch import __version__

ROUTERS = (
    health, geofences, devices, profiles, vehicles, tags, release_notes, sensors, alerts, gates, trace_router,
    reports_router,
)  # fmt: skip


def create_app(settings: ApiSettings) -> FastAPI:
    pool = make_pool(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True, timeout=30)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="BondWatch API",
        version=__version__,
        lifespan=lifespan,
        description="Bonded-zone supervision: registry, readings, alerts, traceability, reports.",
    )
    app.state.settings = settings
    app.state.pool = pool
    install_handlers(app)
    install_security(app, settings)  # CORS and rate limits (api/security.py)
    v1 = APIRouter(prefix="/api/v1")
    for module in ROUTERS:
        v1.include_router(module.router)
    app.include_router(v1)
    app.mount("/metrics", make_asgi_app())
    return app
