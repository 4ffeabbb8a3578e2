"""Settings of the database tools (migrations, stats, tokens)."""

from __future__ import annotations

from bondwatch.settings import CommonSettings


class DbSettings(CommonSettings):
    # The schema owner: only `bondwatch db migrate` uses it. Unset, migrations run as db_url's role.
    db_admin_url: str | None = None
    # The read-only login for dashboards; migrate creates it when set.
    db_readonly_url: str | None = None
