"""One batch of triaged messages into the database, in one transaction.

Readings are COPYed into per-connection staging tables and moved into the hypertables with
``ON CONFLICT DO NOTHING``, so a repeat of an already stored (device_id, seq, ts) costs nothing and
is counted as a duplicate. Dead letters are COPYed as they came. ``device_latest`` moves only
forward in ts, so late data never rolls a device's current state back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from bondwatch.contract.payloads import GpsReading, Reading, RfidReading, StatusMessage, TempReading
from ingest.errors import BatchRejected
from ingest.triage import Accepted, Rejected

log = logging.getLogger(__name__)

COMMON = ("ts", "device_id", "seq", "received_at")


@dataclass(frozen=True)
class ReadingTable:
    kind: str
    table: str
    fields: tuple[str, ...]
    # Where readings that arrive late are marked for the rollup that sums this table (migrations 0007, 0009).
    late_table: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return COMMON + self.fields


def _fields(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(f for f in model.model_fields if f not in ("ts", "seq"))


TABLES = {
    t.kind: t
    for t in (
        ReadingTable("gps", "positions", _fields(GpsReading), "position_late"),
        ReadingTable("temp", "temperatures", _fields(TempReading), "temperature_late"),
        ReadingTable("rfid", "rfid_reads", _fields(RfidReading)),
    )
}

UPSERT_LATEST = """
INSERT INTO device_latest (device_id, kind, ts, seq, received_at, reading)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE
SET kind = EXCLUDED.kind, ts = EXCLUDED.ts, seq = EXCLUDED.seq,
    received_at = EXCLUDED.received_at, reading = EXCLUDED.reading
WHERE EXCLUDED.ts > device_latest.ts
"""

UPSERT_STATUS = """
INSERT INTO device_status (device_id, online, ts, received_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE
SET online = EXCLUDED.online, ts = EXCLUDED.ts, received_at = EXCLUDED.received_at
WHERE EXCLUDED.ts >= device_status.ts
"""


@dataclass
class WriteResult:
    stored: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    dead: Counter[str] = field(default_factory=Counter)
    status: int = 0


# Readings that come more than five minutes after their ts may fall in what a rollup has already summed
# (the cold-chain hours of migration 0007, the fleet's samples of 0009): marked in the same transaction, they
# are rolled again. A batch with none (live telemetry) costs no statement.
LATE_AFTER = timedelta(minutes=5)
MARK_LATE = """
    INSERT INTO {late} (device_id, first_ts)
    SELECT device_id, min(ts) FROM stage_{table}
    WHERE ts < now() - %s
    GROUP BY device_id
"""


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


class BatchWriter:
    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        for spec in TABLES.values():
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS stage_{spec.table} "
                f"(LIKE {spec.table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
        conn.commit()

    def write(self, accepted: Sequence[Accepted], rejected: Sequence[Rejected]) -> WriteResult:
        """Commit the batch; content the database refuses is isolated message by message."""
        try:
            return self._write_once(accepted, rejected)
        except psycopg.OperationalError:
            self.conn.rollback()
            raise
        except psycopg.Error as exc:
            self.conn.rollback()
            log.warning("database refused a batch of %d messages (%s); isolating the culprit", len(accepted), exc)
        result = WriteResult()
        refused: list[Rejected] = list(rejected)
        for item in accepted:
            try:
                one = self._write_once([item], [])
            except psycopg.OperationalError:
                self.conn.rollback()
                raise
            except psycopg.Error as exc:
                self.conn.rollback()
                refused.append(
                    Rejected(item.message, f"database refused the message: {exc}".strip(), item.kind, item.device_id)
                )
                continue
            result.stored.update(one.stored)
            result.duplicates.update(one.duplicates)
            result.status += one.status
        try:
            dead = self._write_once([], refused)
        except psycopg.Error as exc:
            self.conn.rollback()
            raise BatchRejected(f"dead letters could not be written: {exc}") from exc
        result.dead.update(dead.dead)
        return result

    def _write_once(self, accepted: Sequence[Accepted], rejected: Sequence[Rejected]) -> WriteResult:
        result = WriteResult()
        by_kind: dict[str, list[tuple[Reading, Accepted]]] = {}
        statuses: list[tuple[StatusMessage, Accepted]] = []
        for acc in accepted:
            for item in acc.items:
                if isinstance(item, StatusMessage):
                    statuses.append((item, acc))
                else:
                    by_kind.setdefault(acc.kind, []).append((item, acc))
        with self.conn.cursor() as cur:
            for kind, rows in by_kind.items():
                spec = TABLES[kind]
                cols = ", ".join(spec.columns)
                with cur.copy(f"COPY stage_{spec.table} ({cols}) FROM STDIN") as copy:
                    for reading, acc in rows:
                        copy.write_row(self._row(spec, reading, acc))
                cur.execute(
                    f"INSERT INTO {spec.table} ({cols}) SELECT {cols} FROM stage_{spec.table} ON CONFLICT DO NOTHING"
                )
                result.stored[kind] = cur.rowcount
                result.duplicates[kind] = len(rows) - cur.rowcount
                if spec.late_table and min(r.ts for r, _ in rows) < datetime.now(UTC) - LATE_AFTER:
                    cur.execute(MARK_LATE.format(late=spec.late_table, table=spec.table), (LATE_AFTER,))
            latest = self._latest(by_kind)
            if latest:
                cur.executemany(UPSERT_LATEST, latest)
            if statuses:
                cur.executemany(
                    UPSERT_STATUS,
                    [(acc.device_id, s.online, s.ts, _utc(acc.message.received_at)) for s, acc in statuses],
                )
                result.status = len(statuses)
            if rejected:
                with cur.copy(
                    "COPY dead_letters (received_at, topic, payload, reason, device_id, kind) FROM STDIN"
                ) as copy:
                    for rej in rejected:
                        copy.write_row(
                            (
                                _utc(rej.message.received_at),
                                rej.message.topic,
                                rej.message.payload,
                                rej.reason,
                                rej.device_id,
                                rej.kind,
                            )
                        )
                        result.dead[rej.kind or "unknown"] += 1
        self.conn.commit()
        return result

    @staticmethod
    def _row(spec: ReadingTable, reading: Reading, acc: Accepted) -> tuple[object, ...]:
        return (
            reading.ts,
            acc.device_id,
            reading.seq,
            _utc(acc.message.received_at),
            *(getattr(reading, f) for f in spec.fields),
        )

    @staticmethod
    def _latest(by_kind: dict[str, list[tuple[Reading, Accepted]]]) -> list[tuple[object, ...]]:
        newest: dict[str, tuple[Reading, Accepted]] = {}
        for rows in by_kind.values():
            for reading, acc in rows:
                seen = newest.get(acc.device_id)
                if seen is None or reading.ts > seen[0].ts:
                    newest[acc.device_id] = (reading, acc)
        return [
            (
                device,
                acc.kind,
                r.ts,
                r.seq,
                _utc(acc.message.received_at),
                Jsonb(r.model_dump(mode="json", exclude_none=True)),
            )
            for device, (r, acc) in sorted(newest.items())  # sorted: a fixed lock order between workers
        ]
