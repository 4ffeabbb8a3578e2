"""How long readings are kept, on whichever TimescaleDB edition is present.

``timescaledb.license`` says which: ``timescale`` (community: native retention and compression
policies, added by :func:`apply_native_policies` at migrate time) or ``apache`` (Debian's package:
those policies are refused, so :class:`RetentionJob` drops expired chunks itself once a day).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from bondwatch.db.settings import DbSettings

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


class RetentionJob:
    """Once a day (and at start), on a daemon thread, only on the Apache edition."""

    def __init__(self, settings: DbSettings, every_s: float = 86_400) -> None:
        self.settings = settings
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> None:
        with psycopg.connect(self.settings.db_url) as conn:
            edition = license_of(conn)
        if edition == "timescale":
            log.info("retention: native TimescaleDB policies keep %d days", self.settings.db_retention_days)
            return
        log.info(
            "retention: %s edition, dropping chunks older than %d days daily", edition, self.settings.db_retention_days
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                dropped = drop_expired(self.settings)
                if dropped:
                    log.info("retention: dropped %d expired chunks", dropped)
            except psycopg.Error as exc:  # the next run tries again
                log.error("retention job failed: %s", exc)
            if self._stop.wait(self.every_s):
                return
