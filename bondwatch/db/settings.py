"""Settings of the database tools (migrations, stats, tokens)."""

from __future__ import annotations

from pydantic import Field

from bondwatch.settings import CommonSettings


class DbSettings(CommonSettings):
    # The schema owner: only `bondwatch db migrate` uses it. Unset, migrations run as db_url's role.
    db_admin_url: str | None = None
    # The read-only login for dashboards; migrate creates it when set.
    db_readonly_url: str | None = None
    # Readings older than this are dropped (customs keeps supervision records for three years).
    db_retention_days: int = Field(default=1095, ge=30)
