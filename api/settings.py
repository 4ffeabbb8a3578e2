"""Settings of the API service."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from bondwatch.db.settings import DbSettings
from bondwatch.settings import DEFAULT_API_PORT


class ApiSettings(DbSettings):
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=DEFAULT_API_PORT, ge=1, le=65535)
    api_db_pool_max: int = Field(default=10, ge=1, le=100)
    # Time zone of the zone: timestamps in responses carry this offset; days and months are cut in it.
    api_timezone: str = "Asia/Shanghai"
    api_track_max_points: int = Field(default=50_000, ge=100)
    # Comment lines on idle alert streams, so proxies and browsers do not drop them as dead.
    api_stream_keepalive_s: float = Field(default=15.0, gt=0, le=300)
    # Each alert stream holds a database connection of its own (LISTEN pins it), outside the pool.
    api_max_streams: int = Field(default=50, ge=1, le=10_000)
    # Browser origins allowed to call the API (CORS), comma-separated, e.g. https://hmi.zone.example;
    # empty: no CORS headers, only same-origin pages may read answers (api/security.py).
    api_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Token buckets per bearer token and per client address: sustained requests/s and burst; a rate of
    # 0 turns that limit off, api_rate_limit=false both (api/security.py).
    api_rate_limit: bool = True
    api_rate_per_token: float = Field(default=50.0, ge=0)
    api_burst_per_token: int = Field(default=1000, ge=1)
    api_rate_per_ip: float = Field(default=200.0, ge=0)
    api_burst_per_ip: int = Field(default=2000, ge=1)

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _cors_origins(cls, value: object) -> object:
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, list):
            return items
        origins = [str(v).strip().rstrip("/") for v in items if str(v).strip()]
        for origin in origins:
            parts = urlsplit(origin)
            if origin == "*" or parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ValueError(
                    f"CORS origin {origin!r}: give scheme://host[:port], e.g. https://hmi.example ('*' is refused)"
                )
        return origins
