"""Settings of the database tools (migrations, stats, tokens)."""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from bondwatch.settings import CommonSettings

URL_FIELDS = ("db_url", "db_admin_url", "db_readonly_url")


class DbSettings(CommonSettings):
    # The schema owner: only `bondwatch db migrate` uses it. Unset, migrations run as db_url's role.
    db_admin_url: str | None = None
    # The read-only login for dashboards; migrate creates it when set.
    db_readonly_url: str | None = None
    # Readings older than this are dropped (customs keeps supervision records for three years).
    db_retention_days: int = Field(default=1095, ge=30)

    def on_database(self, dbname: str) -> Self:
        """The same settings with every login pointed at database ``dbname`` on the same server (a test's or a
        benchmark's own database, or ``postgres`` to create one)."""
        return self.model_copy(
            update={key: urlunsplit(urlsplit(url)._replace(path=f"/{dbname}")) for key in URL_FIELDS
                    if (url := getattr(self, key))}
        )  # fmt: skip
