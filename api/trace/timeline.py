"""A tag's story from the database: registry facts, reads, gate passages, release notes, rides, alerts.

The one implementation of the timeline: ``GET /api/v1/trace/{epc}`` and ``bondwatch trace`` both call
:func:`assemble` on a connection whose session ``TimeZone`` is the zone's (Asia/Shanghai), so every
time in the story carries ``+08:00``.

Where each part comes from (docs/traceability.md has the whole picture):

- reads: ``rfid_reads`` by EPC (index ``rfid_reads_epc_ts``); the gate of a read is its own
  ``gate_id``, else its reader's registered gate, as the rules engine forms passages;
- passages: ``gate_passages.epcs @> ARRAY[epc]`` (GIN index ``gate_passages_epcs``);
- release notes: ``release_notes.epcs @> ARRAY[epc]``;
- rides: for each passage that saw the tag with a vehicle, that vehicle's positions from the passage
  until the vehicle's next passage (else 2 h; never more than 24 h), evenly thinned to 2,000 points;
  without such a passage, the tag's registered vehicle around the tag's reads;
- alerts: ``gate_hold`` alerts that name the tag or one of its passages, and ``bonded_exit`` /
  ``corridor_deviation`` alerts of a ride's vehicle opened during the ride.

Every list is capped (see the constants) so that a tag read for years by a fixed reader still answers
quickly; what was cut is named in ``truncated``, and the most recent items are the ones kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, TupleRow, dict_row
from psycopg.types.json import Jsonb

from api.errors import Invalid, NotFound
from bondwatch.contract.payloads import EPC_RE
from edge.protocols.epc import pure_identity_uri

Row = dict[str, Any]
Cursor = AsyncCursor[DictRow]

READ_CAP = 5_000
PASSAGE_CAP = 1_000  # a vehicle tag passes gates several times a day for years
RIDE_CAP = 50
TRACK_CAP = 2_000  # points per ride, enough for a map line, small enough for a phone
RIDE_OPEN = timedelta(hours=2)  # a ride with no next passage: what the vehicle did in the next 2 h
RIDE_MAX = timedelta(hours=24)  # a truck parked for a month between passages is not a month-long ride
RIDE_ALERT_TYPES = ["bonded_exit", "corridor_deviation"]

# Events that happen at the same instant are listed in the order they make sense to a reader: the note
# that allowed the passage, the passage, the reads it was made of, the alert it raised.
_RANK = {"release_note": 0, "passage": 1, "read": 2, "alert": 3}

LABEL_ZH = {
    "read": "RFID读取",
    "release_note": "核放单",
    "gate_hold": "卡口拦截告警",
    "bonded_exit": "保税货物越界告警",
    "corridor_deviation": "偏离监管通道告警",
}

TAG_SQL = """
SELECT t.epc, t.kind, t.customs_status, t.description, t.vehicle_id, v.plate, t.updated_at
FROM tags t LEFT JOIN vehicles v ON v.vehicle_id = t.vehicle_id
WHERE t.epc = %s
"""

# Newest first so that the cap keeps the latest reads; put back in time order in Python. rssi_dbm is
# real: through numeric (6 significant digits) it is the decimal the reader sent (-61.3, not
# -61.29999923706055).
READS_SQL = """
SELECT r.ts, r.device_id, d.name AS device_name, coalesce(r.gate_id, d.gate_id) AS gate_id, g.name AS gate_name,
       r.direction, r.antenna, r.rssi_dbm::numeric::float8 AS rssi_dbm
FROM rfid_reads r
LEFT JOIN devices d ON d.device_id = r.device_id
LEFT JOIN geofences g ON g.kind = 'gate' AND g.id = coalesce(r.gate_id, d.gate_id)
WHERE r.epc = %s
ORDER BY r.ts DESC, r.device_id DESC, r.seq DESC
LIMIT %s
"""

PASSAGES_SQL = """
SELECT p.id, p.site, p.gate_id, g.name AS gate_name, p.direction, p.decision, p.reasons, p.release_note_id,
       p.vehicle_id, v.plate, p.vehicle_epc, p.epcs, p.cargo_epcs, p.missing_epcs, p.reads, p.readers,
       p.first_read_at, p.last_read_at, p.decided_at
FROM gate_passages p
LEFT JOIN geofences g ON g.kind = 'gate' AND g.id = p.gate_id
LEFT JOIN vehicles v ON v.vehicle_id = p.vehicle_id
WHERE p.epcs @> ARRAY[%s]::text[]
ORDER BY p.first_read_at DESC, p.id DESC
LIMIT %s
"""

NOTES_SQL = """
SELECT n.id, n.vehicle_id, v.plate, n.valid_from, n.valid_until, n.created_at, n.created_by, n.used_at,
       n.used_passage_id, cardinality(n.epcs) AS epcs_count
FROM release_notes n LEFT JOIN vehicles v ON v.vehicle_id = n.vehicle_id
WHERE n.epcs @> ARRAY[%s]::text[]
ORDER BY n.valid_from, n.id
"""

NEXT_PASSAGE_SQL = """
SELECT id, first_read_at FROM gate_passages
WHERE vehicle_id = %s AND (first_read_at, id) > (%s, %s)
ORDER BY first_read_at, id
LIMIT 1
"""

# Even thinning: with n > cap points, keep the first point of each of `cap` equal slices of the row
# numbers, which always keeps the first and the last fix. Fixes that are not fixes (no fix, the 0/0
# placeholder) are left out, as the rules engine leaves them out.
TRACK_SQL = """
WITH pts AS (
    SELECT ts, lon, lat, row_number() OVER (ORDER BY ts, seq) AS rn, count(*) OVER () AS n
    FROM positions
    WHERE device_id = %(device)s AND ts >= %(lo)s AND ts < %(hi)s AND fix <> 'none' AND NOT (lat = 0 AND lon = 0)
)
SELECT ts, lon, lat, n FROM pts
WHERE n <= %(cap)s OR rn = 1
   OR (rn - 1) * (%(cap)s - 1) / nullif(n - 1, 0) > (rn - 2) * (%(cap)s - 1) / nullif(n - 1, 0)
ORDER BY ts, rn
"""

ALERT_COLUMNS = (
    "id, type, severity, status, subject_kind, subject_id, opened_at, updated_at, cleared_at, acked_by, details"
)

# A gate_hold alert lists at most 20 tags (rules/steps/gates.py), so it is also found through the
# passage that raised it.
GATE_HOLD_SQL = f"""
SELECT {ALERT_COLUMNS} FROM alerts
WHERE type = 'gate_hold'
  AND (details->'epcs' ? %(epc)s OR details->'reasons' @> %(reason)s
       OR details->>'passage_id' = ANY(%(passages)s::text[]))
ORDER BY opened_at, id
"""

RIDE_ALERTS_SQL = f"""
SELECT {ALERT_COLUMNS} FROM alerts
WHERE type = ANY(%s::text[]) AND subject_id = %s AND opened_at >= %s AND opened_at < %s
ORDER BY opened_at, id
"""


def epc_uri(epc: str) -> tuple[str, str]:
    """(URI, scheme): the pure identity URI for SGTIN, SSCC and GRAI, else the TDS raw URI.

    The raw form ``urn:epc:raw:{bits}.x{HEX}`` (GS1 Tag Data Standard, EPC Raw URI) names the tag's
    bits without claiming an identity: an EPC does not have to be a GS1 key to be a valid read.
    """
    uri = pure_identity_uri(epc)
    if uri is not None:
        return uri, uri.split(":")[3]
    return f"urn:epc:raw:{len(epc) * 4}.x{epc.upper()}", "raw"


def normalize(epc: str) -> str:
    text = epc.strip()
    if not EPC_RE.fullmatch(text):
        raise Invalid(f"EPC {epc!r} is not hex of 96..496 bits in whole 16-bit words (24..124 hex digits)")
    return text.upper()


def passage_label(direction: str, decision: str | None) -> str:
    if direction == "in":
        return "入区通行"
    return {"pass": "出区放行", "hold": "出区拦截"}.get(decision or "", "出区通行")


async def assemble(conn: AsyncConnection[TupleRow], epc: str) -> dict[str, Any]:
    """The whole story of one tag; raises NotFound when the platform has never heard of it."""
    epc = normalize(epc)
    cur = conn.cursor(row_factory=dict_row)
    truncated: list[str] = []

    tag = await _one(cur, TAG_SQL, (epc,))
    reads = await _all(cur, READS_SQL, (epc, READ_CAP + 1))
    if len(reads) > READ_CAP:
        truncated.append("reads")
    reads = reads[:READ_CAP][::-1]
    passages = await _all(cur, PASSAGES_SQL, (epc, PASSAGE_CAP + 1))
    if len(passages) > PASSAGE_CAP:
        truncated.append("passages")
    passages = passages[:PASSAGE_CAP][::-1]
    notes = await _all(cur, NOTES_SQL, (epc,))
    if tag is None and not reads and not passages and not notes:
        raise NotFound(
            f"EPC {epc} is unknown: it is not registered as a tag, no reader has read it, "
            "and no gate passage or release note lists it"
        )

    rides = await _rides(cur, tag, passages, reads, truncated)
    alerts = await _alerts(cur, epc, passages, rides)
    uri, scheme = epc_uri(epc)
    events = (
        [_note_event(n) for n in notes]
        + [_passage_event(p, epc) for p in passages]
        + _read_events(reads, passages)
        + [_alert_event(a) for a in alerts]
    )
    events.sort(key=lambda e: (e["at"], _RANK[e["kind"]], e["_order"]))
    for event in events:
        del event["_order"]
    return {
        "epc": epc,
        "uri": uri,
        "scheme": scheme,
        "tag": tag,
        "events": events,
        "rides": rides,
        "truncated": truncated,
    }


async def _one(cur: Cursor, sql: str, params: Any) -> Row | None:
    await cur.execute(sql, params)
    row = await cur.fetchone()
    return dict(row) if row is not None else None


async def _all(cur: Cursor, sql: str, params: Any) -> list[Row]:
    await cur.execute(sql, params)
    return [dict(r) for r in await cur.fetchall()]


# ---------------------------------------------------------------- rides


async def _rides(
    cur: Cursor, tag: Row | None, passages: list[Row], reads: list[Row], truncated: list[str]
) -> list[Row]:
    legs = [p for p in passages if p["vehicle_id"]]
    if len(legs) > RIDE_CAP:
        truncated.append("rides")
        legs = legs[-RIDE_CAP:]
    wanted = {p["vehicle_id"] for p in legs} | ({tag["vehicle_id"]} if tag and tag["vehicle_id"] else set())
    await cur.execute(
        "SELECT vehicle_id, plate, device_id FROM vehicles WHERE vehicle_id = ANY(%s::text[])", (list(wanted),)
    )
    vehicles = {r["vehicle_id"]: dict(r) for r in await cur.fetchall()}

    rides = []
    for p in legs:
        start: datetime = p["first_read_at"]
        nxt = await _one(cur, NEXT_PASSAGE_SQL, (p["vehicle_id"], start, p["id"]))
        if nxt is None:
            end, why, to_passage = start + RIDE_OPEN, "no_next_passage", None
        elif nxt["first_read_at"] - start > RIDE_MAX:
            end, why, to_passage = start + RIDE_MAX, "max_span", None
        else:
            end, why, to_passage = nxt["first_read_at"], "next_passage", nxt["id"]
        rides.append(await _ride(cur, vehicles, p["vehicle_id"], start, end, p["id"], to_passage, why))

    if not legs and tag and tag["vehicle_id"]:
        # No passage tied the tag to a vehicle: the registry's vehicle, around the only times we have.
        start_r = reads[0]["ts"] if reads else None
        end_r = reads[-1]["ts"] + RIDE_OPEN if reads else None
        rides.append(await _ride(cur, vehicles, tag["vehicle_id"], start_r, end_r, None, None, "registry"))
    return rides


async def _ride(
    cur: Cursor,
    vehicles: dict[str, Row],
    vehicle_id: str,
    start: datetime | None,
    end: datetime | None,
    from_passage: str | None,
    to_passage: str | None,
    why: str,
) -> Row:
    vehicle = vehicles.get(vehicle_id, {})
    device = vehicle.get("device_id")
    track: list[list[Any]] = []
    total = 0
    if device and start is not None and end is not None:
        await cur.execute(TRACK_SQL, {"device": device, "lo": start, "hi": end, "cap": TRACK_CAP})
        rows = await cur.fetchall()
        track = [[r["lon"], r["lat"], r["ts"]] for r in rows]
        total = int(rows[0]["n"]) if rows else 0
    return {
        "vehicle_id": vehicle_id,
        "plate": vehicle.get("plate"),
        "device_id": device,
        "from": start,
        "to": end,
        "from_passage_id": from_passage,
        "to_passage_id": to_passage,
        "ends": why,  # next_passage | no_next_passage (+2 h) | max_span (24 h) | registry
        "points_total": total,
        "downsampled": total > len(track),
        "track": track,
    }


# ---------------------------------------------------------------- alerts


async def _alerts(cur: Cursor, epc: str, passages: list[Row], rides: list[Row]) -> list[Row]:
    found: dict[int, Row] = {}
    params = {"epc": epc, "reason": Jsonb([{"epc": epc}]), "passages": [p["id"] for p in passages]}
    for row in await _all(cur, GATE_HOLD_SQL, params):
        found.setdefault(row["id"], {**row, "via": "tag"})
    for ride in rides:
        if ride["from"] is None or ride["to"] is None:
            continue
        rows = await _all(cur, RIDE_ALERTS_SQL, (RIDE_ALERT_TYPES, ride["vehicle_id"], ride["from"], ride["to"]))
        for row in rows:
            found.setdefault(row["id"], {**row, "via": "ride"})
    return list(found.values())


# ---------------------------------------------------------------- events


def _passage_event(p: Row, epc: str) -> Row:
    reasons = p["reasons"] or []
    return {
        "at": p["first_read_at"],
        "kind": "passage",
        "label_zh": passage_label(p["direction"], p["decision"]),
        "passage_id": p["id"],
        "site": p["site"],
        "gate_id": p["gate_id"],
        "gate_name": p["gate_name"],
        "direction": p["direction"],
        "decision": p["decision"],
        "reasons": reasons,
        # The reasons that name this tag (not_on_note, bonded_without_note), for a reader of one tag.
        "reasons_for_tag": [r for r in reasons if isinstance(r, dict) and r.get("epc") == epc],
        "release_note_id": p["release_note_id"],
        "vehicle_id": p["vehicle_id"],
        "plate": p["plate"],
        "vehicle_epc": p["vehicle_epc"],
        "role": "vehicle" if p["vehicle_epc"] == epc else "cargo",
        "epcs": p["epcs"],
        "cargo_epcs": p["cargo_epcs"],
        "missing_epcs": p["missing_epcs"],
        "reads": p["reads"],
        "readers": p["readers"],
        "first_read_at": p["first_read_at"],
        "last_read_at": p["last_read_at"],
        "decided_at": p["decided_at"],
        "_order": p["id"],
    }


def _read_events(reads: list[Row], passages: list[Row]) -> list[Row]:
    by_gate: dict[str, list[Row]] = {}
    for p in passages:
        by_gate.setdefault(p["gate_id"], []).append(p)
    events = []
    for i, r in enumerate(reads):
        # A read belongs to the passage its gate formed at that moment from its reader's reads.
        passage = next(
            (
                p["id"]
                for p in by_gate.get(r["gate_id"] or "", [])
                if p["first_read_at"] <= r["ts"] <= p["last_read_at"] and r["device_id"] in p["readers"]
            ),
            None,
        )
        events.append(
            {
                "at": r["ts"],
                "kind": "read",
                "label_zh": LABEL_ZH["read"],
                "device_id": r["device_id"],
                "device_name": r["device_name"],
                "gate_id": r["gate_id"],
                "gate_name": r["gate_name"],
                "direction": r["direction"],
                "antenna": r["antenna"],
                "rssi_dbm": r["rssi_dbm"],
                "passage_id": passage,
                "_order": f"{i:08d}",
            }
        )
    return events


def _note_event(n: Row) -> Row:
    return {
        "at": n["valid_from"],
        "kind": "release_note",
        "label_zh": LABEL_ZH["release_note"],
        "release_note_id": n["id"],
        "vehicle_id": n["vehicle_id"],
        "plate": n["plate"],
        "valid_from": n["valid_from"],
        "valid_until": n["valid_until"],
        "created_at": n["created_at"],
        "created_by": n["created_by"],
        "used_at": n["used_at"],
        "used_passage_id": n["used_passage_id"],
        "epcs_count": n["epcs_count"],
        "_order": n["id"],
    }


def _alert_event(a: Row) -> Row:
    details = a["details"] or {}
    return {
        "at": a["opened_at"],
        "kind": "alert",
        "label_zh": LABEL_ZH.get(a["type"], "告警"),
        "alert_id": a["id"],
        "type": a["type"],
        "severity": a["severity"],
        "status": a["status"],
        "subject_kind": a["subject_kind"],
        "subject_id": a["subject_id"],
        "opened_at": a["opened_at"],
        "updated_at": a["updated_at"],
        "cleared_at": a["cleared_at"],
        "acked_by": a["acked_by"],
        "message_zh": details.get("message_zh"),
        "message_en": details.get("message_en"),
        "via": a["via"],  # tag: the alert names the tag or its passage; ride: the vehicle's, during the ride
        "details": details,
        "_order": f"{a['id']:012d}",
    }
