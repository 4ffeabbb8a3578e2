"""Settings of the API service."""

from __future__ import annotations

from pydantic import Field

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
