"""How long readings are kept, on whichever TimescaleDB edition is present.

``timescaledb.license`` says which: ``timescale`` (community: native retention and compression
policies, added by :func:`apply_native_policies` at migrate time) or ``apache`` (Debian's package:
those policies are refused, so :class:`RetentionJob` drops expired chunks itself once a day).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from bondwatch.db.settings import DbSettings
from bondwatch.jobs import PeriodicJob

log = logging.getLogger(__name__)
HYPERTABLES = ("positions", "temperatures", "rfid_reads")


def license_of(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_setting('timescaledb.license')").fetchone()
    return str(row[0]) if row else "apache"


def apply_native_policies(conn: psycopg.Connection[Any], settings: DbSettings) -> bool:
    """Add retention and compression policies where the edition allows; False on Apache."""
    if license_of(conn) != "timescale":
        return False
    keep = f"{settings.db_retention_days} days"
    for table in HYPERTABLES:
        conn.execute(f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id')")
        conn.execute("SELECT add_compression_policy(%s, %s::interval, if_not_exists => true)", (table, "7 days"))
        conn.execute("SELECT add_retention_policy(%s, %s::interval, if_not_exists => true)", (table, keep))
    return True


def drop_expired(settings: DbSettings) -> int:
    """Drop chunks older than the retention; returns how many were dropped."""
    with psycopg.connect(settings.db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT bondwatch_drop_expired(make_interval(days => %s))", (settings.db_retention_days,)
        ).fetchone()
    return int(row[0]) if row else 0


class RetentionJob(PeriodicJob):
    """Once a day (and at start), only on the Apache edition."""

    name = "retention"
    expected_errors = (psycopg.Error,)

    def __init__(self, settings: DbSettings, every_s: float = 86_400) -> None:
        super().__init__(every_s)
        self.settings = settings

    def start(self) -> None:
        with psycopg.connect(self.settings.db_url) as conn:
            edition = license_of(conn)
        if edition == "timescale":
            log.info("retention: native TimescaleDB policies keep %d days", self.settings.db_retention_days)
            return
        log.info(
            "retention: %s edition, dropping chunks older than %d days daily", edition, self.settings.db_retention_days
        )
        super().start()

    def round(self) -> None:
        dropped = drop_expired(self.settings)
        if dropped:
            log.info("retention: dropped %d expired chunks", dropped)
