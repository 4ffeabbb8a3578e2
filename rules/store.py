"""Where the engine's effects become rows: alerts and their events, gate passages, checkpointed state.

Every write is idempotent, so replaying readings the broker redelivers after a crash changes
nothing that was already written: an alert episode is keyed by (type, subject, opened_at), a
passage by its id, a release note is used once. Callers own the transaction.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from rules import metrics
from rules.effects import AlertChange, Effects, PassageOutcome, at

log = logging.getLogger(__name__)
ACTOR = "bondwatch-rules"

EVENT_SQL = (
    "INSERT INTO alert_events (site, alert_id, event, actor, note, alert) "
    "SELECT %s, a.id, %s, %s, %s, bondwatch_alert_object(a) FROM alerts a WHERE a.id = %s"
)
OPEN_SQL = (
    "INSERT INTO alerts (type, severity, status, subject_kind, subject_id, opened_at, updated_at, details) "
    "VALUES (%s, %s, 'active', %s, %s, %s, now(), %s) ON CONFLICT DO NOTHING RETURNING id"
)
UPDATE_SQL = (
    "UPDATE alerts SET details = %s, updated_at = now() WHERE type = %s AND subject_id = %s AND status <> 'cleared'"
)
CLEAR_SQL = (
    "UPDATE alerts SET status = 'cleared', cleared_at = %s, updated_at = now(), details = details || %s "
    "WHERE type = %s AND subject_id = %s AND status <> 'cleared' RETURNING id"
)
ESCALATE_SQL = (
    "UPDATE alerts SET escalated_at = now(), escalation_level = escalation_level + 1, updated_at = now() "
    "WHERE status = 'active' AND severity = 'critical' "
    "AND coalesce(escalated_at, raised_at) <= now() - make_interval(secs => %s) RETURNING id, type"
)
PASSAGE_SQL = (
    "INSERT INTO gate_passages (site, id, gate_id, direction, vehicle_id, vehicle_epc, epcs, cargo_epcs, missing_epcs, "
    "reads, readers, first_read_at, last_read_at, decision, reasons, release_note_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING"
)
USE_NOTE_SQL = (
    "UPDATE release_notes SET used_at = now(), used_passage_id = %s WHERE id = %s AND used_passage_id IS NULL"
)
# Checkpoints write hundreds of states at a time: COPY into a session table, then one upsert.
STAGE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS rule_state_stage (rule text, subject text, state jsonb) ON COMMIT DELETE ROWS"
)
SAVE_STATE_SQL = (
    "INSERT INTO rule_state (site, rule, subject, state) SELECT %s, rule, subject, state FROM rule_state_stage "
    "ON CONFLICT (site, rule, subject) DO UPDATE SET state = EXCLUDED.state, updated_at = now()"
)


def event(cur: psycopg.Cursor[Any], site: str, alert_id: int, name: str, alert_type: str, actor: str = ACTOR) -> None:
    cur.execute(EVENT_SQL, (site, name, actor, None, alert_id))
    metrics.ALERT_CHANGES.labels(alert_type, name).inc()


class Store:
    def __init__(self, conn: psycopg.Connection[Any], site: str) -> None:
        self.conn = conn
        self.site = site

    def apply(self, fx: Effects) -> None:
        with self.conn.cursor() as cur:
            # Passages first: a hold's alert refers to its passage.
            for passage in fx.passages:
                self._passage(cur, passage)
            for change in fx.alerts:
                self._alert(cur, change)

    def _alert(self, cur: psycopg.Cursor[Any], c: AlertChange) -> None:
        if c.action == "open":
            cur.execute(OPEN_SQL, (c.type, c.severity, c.subject_kind, c.subject_id, c.when, Jsonb(c.details)))
            row = cur.fetchone()
            if row is not None:
                event(cur, self.site, row[0], "opened", c.type)
                return
        if c.action in ("open", "update"):
            cur.execute(UPDATE_SQL, (Jsonb(c.details), c.type, c.subject_id))
            return
        cur.execute(CLEAR_SQL, (c.when, Jsonb(c.details), c.type, c.subject_id))
        for (alert_id,) in cur.fetchall():
            event(cur, self.site, alert_id, "cleared", c.type)

    def _passage(self, cur: psycopg.Cursor[Any], p: PassageOutcome) -> None:
        cur.execute(
            PASSAGE_SQL,
            (
                self.site, p.id, p.gate_id, p.direction, p.vehicle_id, p.vehicle_epc, list(p.epcs), list(p.cargo_epcs),
                list(p.missing_epcs), p.reads, list(p.readers), at(p.first_read), at(p.last_read), p.decision,
                Jsonb([r.as_json() for r in p.reasons]), p.release_note_id,
            ),
        )  # fmt: skip
        if p.decision == "pass" and p.release_note_id:
            cur.execute(USE_NOTE_SQL, (p.id, p.release_note_id))

    def escalate(self, after_s: float) -> int:
        with self.conn.cursor() as cur:
            rows = cur.execute(ESCALATE_SQL, (after_s,)).fetchall()
            for alert_id, alert_type in rows:
                event(cur, self.site, alert_id, "escalated", alert_type)
        return len(rows)

    def save_states(self, rows: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        with self.conn.cursor() as cur:
            gone = [(self.site, rule, subject) for rule, subject, state in rows if state is None]
            if len(gone) < len(rows):
                cur.execute(STAGE_SQL)
                with cur.copy("COPY rule_state_stage (rule, subject, state) FROM STDIN") as copy:
                    for rule, subject, state in rows:
                        if state is not None:
                            copy.write_row((rule, subject, orjson.dumps(state).decode()))
                cur.execute(SAVE_STATE_SQL, (self.site,))
            if gone:
                cur.executemany("DELETE FROM rule_state WHERE site = %s AND rule = %s AND subject = %s", gone)

    def load_states(self) -> list[tuple[str, str, dict[str, Any]]]:
        rows = self.conn.execute("SELECT rule, subject, state FROM rule_state WHERE site = %s", (self.site,)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def last_heard(self) -> list[tuple[str, str, float, float]]:
        """(device, kind, received_at, ts) of the last reading that counts as hearing from each device.

        For a temperature sensor any reading; for a vehicle terminal the last valid fix (of the day
        before its latest reading), since readings without a fix do not end a GPS loss.
        """
        rows = self.conn.execute(
            "SELECT l.device_id, l.kind, extract(epoch FROM l.received_at), extract(epoch FROM l.ts) "
            "FROM device_latest l WHERE l.kind = 'temp' "
            "UNION ALL "
            "SELECT l.device_id, l.kind, extract(epoch FROM p.received_at), extract(epoch FROM p.ts) "
            "FROM device_latest l CROSS JOIN LATERAL (SELECT received_at, ts FROM positions "
            "  WHERE device_id = l.device_id AND fix <> 'none' AND ts > l.ts - interval '1 day' "
            "  ORDER BY ts DESC LIMIT 1) p WHERE l.kind = 'gps'"
        ).fetchall()
        return [(r[0], r[1], float(r[2]), float(r[3])) for r in rows]
