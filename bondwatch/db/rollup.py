"""The hourly cold-chain rollup (migration 0007), kept current by `bondwatch serve`.

Every minute :class:`RollupJob` calls ``bondwatch_roll_temperatures()``: each sensor's hours that are complete
(their last reading's interval known) go into ``temperature_hourly``, and hours that late readings touched
(marked by ingest) are rolled again. ``bondwatch_coldchain`` and ``bondwatch_door_openings`` read those hours
and the readings for the rest of a window, so statistics over weeks read hours, not readings, and give the
same figures. See docs/coldchain.md.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from bondwatch.db.settings import DbSettings
from bondwatch.jobs import PeriodicJob

log = logging.getLogger(__name__)


def roll_temperatures(settings: DbSettings, upto: datetime | None = None, device: str | None = None) -> int:
    """One round: the hours written (0 when another round holds the lock)."""
    with psycopg.connect(settings.db_url, autocommit=True, application_name="bondwatch-rollup") as conn:
        row = conn.execute("SELECT bondwatch_roll_temperatures(coalesce(%s, now()), %s)", (upto, device)).fetchone()
    return int(row[0]) if row else 0


class RollupJob(PeriodicJob):
    name = "coldchain-rollup"
    expected_errors = (psycopg.Error,)

    def __init__(self, settings: DbSettings, every_s: float = 60) -> None:
        super().__init__(every_s)
        self.settings = settings

    def round(self) -> None:
        written = roll_temperatures(self.settings)
        if written:
            log.info("cold-chain rollup: %d sensor-hours written", written)
