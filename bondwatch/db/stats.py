"""Counts for `bondwatch stats`, taken from the database itself."""

from __future__ import annotations

from typing import TypedDict

import psycopg

from bondwatch.db.settings import DbSettings

READING_TABLES = {"gps": "positions", "temp": "temperatures", "rfid": "rfid_reads"}


class ReadingStats(TypedDict):
    readings: dict[str, int]
    dead_letters: int


def reading_stats(settings: DbSettings) -> ReadingStats:
    with psycopg.connect(settings.db_url) as conn:
        readings = {
            kind: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for kind, table in READING_TABLES.items()
        }
        dead = int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])  # type: ignore[index]
    return {"readings": readings, "dead_letters": dead}
