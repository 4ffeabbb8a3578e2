"""The platform's own rollups, kept current by `bondwatch serve` (TimescaleDB's Apache edition has no
continuous aggregates).

Every minute :class:`RollupJob` calls, in the database:

- ``bondwatch_roll_temperatures()`` (migration 0007): each sensor's complete hours into ``temperature_hourly``,
  read by ``bondwatch_coldchain(_many)`` and ``bondwatch_door_openings(_many)`` with the readings for the rest of
  a window, so statistics over weeks read hours, not readings, and give the same figures (docs/coldchain.md);
- ``bondwatch_roll_positions()`` (migration 0009): each truck's last fix of every five minutes into
  ``position_samples``, read by ``bondwatch_fleet_usage`` and ``bondwatch_soc_series`` (docs/dashboards.md).

Readings that arrive late are marked by ingest and rolled again on the next round.
"""

from __future__ import annotations

import logging
from datetime import datetime

import psycopg

from bondwatch.db.settings import DbSettings
from bondwatch.jobs import PeriodicJob

log = logging.getLogger(__name__)

ROLLUPS = {
    "temperatures": "SELECT bondwatch_roll_temperatures(coalesce(%s, now()), %s)",
    "positions": "SELECT bondwatch_roll_positions(coalesce(%s, now()), %s)",
}


def roll(settings: DbSettings, upto: datetime | None = None, device: str | None = None) -> dict[str, int]:
    """One round of every rollup: the rows each wrote (0 when another round holds its lock)."""
    written = {}
    with psycopg.connect(settings.db_url, autocommit=True, application_name="bondwatch-rollup") as conn:
        for name, statement in ROLLUPS.items():
            row = conn.execute(statement, (upto, device)).fetchone()
            written[name] = int(row[0]) if row else 0
    return written


class RollupJob(PeriodicJob):
    name = "rollup"
    expected_errors = (psycopg.Error,)

    def __init__(self, settings: DbSettings, every_s: float = 60) -> None:
        super().__init__(every_s)
        self.settings = settings

    def round(self) -> None:
        written = roll(self.settings)
        if any(written.values()):
            log.info("rollups: %s", ", ".join(f"{name} {n} rows" for name, n in written.items()))
