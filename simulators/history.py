"""`bondwatch simulate history`: weeks of the bonded zone written straight into the database, in minutes.

Dashboards, the monthly report and the benchmarks need a month of data; running the platform for a month is
not an option, and replaying a month through MQTT would take hours. The history comes from the models that
drive ``simulate site``, stepped in simulated time, and what the platform makes of the readings comes from the
platform's own rules engine, so the derived rows agree with the readings::

    Fleet (fleet.py)            ─► positions      ─┐
    ColdStore (coldrooms.py)    ─► temperatures   ─┼─► COPY ─► positions, temperatures, rfid_reads, device_latest
    the fleet's gate passages   ─► rfid_reads     ─┘
                                     │ in time order, arrival = ts
                                     ▼
            rules.engine.Engine ─► rules.store.Store ─► gate_passages, alerts, alert_events, release notes used
                                     ▼
            dispatchers on shift: acknowledge, resolve ─► alerts, alert_events

Added to the models, because a month of the site has them and the models alone do not:

- **release notes** (核放单) issued while each truck loads, listing its pallets; about 2 % of outbound trips
  have a problem (no note, a pallet loaded after the note was issued), the gate holds the truck, and most
  notes are amended and the truck read again, the rest released by hand after inspection;
- **cold-store incidents**: compressor failures (at least one per history, so that even a short one has an
  excursion) repaired after 2-6 h, and doors propped open for 10-40 min;
- **GNSS outages**: a terminal reporting without a fix for a few minutes, now and then (``gps_lost``);
- **dispatchers** who acknowledge alerts after minutes (log-normal, slower at night), resolve ``bonded_exit``
  and ``gate_hold`` alerts after checking, escalations of unacknowledged critical alerts, and a few alerts
  nobody acknowledges.

Every device, vehicle and release-note id gets ``prefix`` in front, and the prefix is folded into every tag's
serial (:func:`simulators.scenario.prefixed_epc`) and into the gate reads' milliseconds (a passage's id is its
gate and first read), so several histories fit in one database; site data (geofences, profiles) keep their
ids and are upserted. History is not sent on MQTT: every alert event and gate decision it writes is marked
published, and the times the store takes from the database clock (``raised_at``, ``updated_at``, event
times, ``decided_at``, ``used_at``) are set to the simulated ones.

Speed: the fleet model advances trucks in 2-second drive ticks, about 3 s of CPU per simulated day for 24
trucks, so it runs in a worker process, and so does the cold store, while this process writes and runs the
engine, one transaction per 3 simulated hours.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import itertools
import logging
import math
import multiprocessing
import queue
import random
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import psycopg
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from api.registry import RegistryTable
from api.routers import devices as devices_api
from api.routers import profiles as profiles_api
from api.routers import vehicles as vehicles_api
from bondwatch.contract.payloads import GpsReading, RfidReading, TempReading
from bondwatch.errors import BondWatchError
from bondwatch.geofence import Geofence, GeofenceInvalid, parse_feature
from bondwatch.settings import load_settings
from ingest.writer import UPSERT_LATEST
from rules.effects import Effects
from rules.engine import Engine
from rules.fences import FenceSet
from rules.observation import Observation
from rules.registry import TABLES, Registry, ReleaseNote, Tag
from rules.settings import RulesSettings
from rules.steps.gates import passage_id
from rules.store import ACTOR, Store
from simulators.coldrooms import ROOMS, ColdStore
from simulators.fleet import Fleet, GatePassage
from simulators.geography import GATES
from simulators.scenario import PREFIX_MAX, prefixed_epc
from simulators.site import site_registry

log = logging.getLogger(__name__)

ZONE = ZoneInfo("Asia/Shanghai")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK_S = 3 * 3600  # simulated time per transaction, per worker message and per progress step
GPS_FIELDS = ("lat", "lon", "speed_kmh", "heading_deg", "hdop", "sats", "soc_pct", "energy_kwh", "h2_kg", "odometer_km")
TEMP_FIELDS = ("temp_c", "rh_pct", "door_open", "battery_v")

# Arrival delays, log-normal (median s, sigma): a 4G terminal, a Modbus poll through the cold store's gateway,
# a wired gate gateway.
GPS_DELAY = (0.8, 0.5)
TEMP_DELAY = (0.35, 0.4)
RFID_DELAY = (0.12, 0.4)

# Gate reads as ``simulate site`` produces them: a truck stands about 4 s in the portal and the gate's edge
# agent reports each tag once per 3-second ALE window, so a tag is read about twice; a pallet in the middle of
# a load is shadowed now and then (it is then listed as missing, not held).
READ_ROUNDS_S = (2.8, 3.9)
READ_JITTER_S = 0.15
VEHICLE_TAG_READ_P = 0.995
CARGO_TAG_READ_P = 0.93
CLOSE_AFTER_S = 0.25  # the engine's tick after a passage window, as the live loop's 0.5 s tick would land

# Release notes (核放单).
NOTE_ISSUED_BEFORE_S = (600.0, 2700.0)  # issued while the truck loads
NOTE_VALID_S = 4 * 3600.0
NO_NOTE_P = 0.006  # nobody filed the note
NOT_ON_NOTE_P = 0.012  # a pallet was loaded after the note was issued
AMENDED_P = 0.7  # otherwise customs inspect the load and release the truck by hand
AMEND_AFTER_S = (20.0, 40.0)
REREAD_AFTER_S = (50.0, 85.0)  # the truck still stands at the gate: the fleet's outbound dwell is 90-300 s
NOTES_KEPT_S = 3600.0  # an in-memory note this long past its end can decide no passage still to come

# Cold-store incidents and GNSS outages.
COMPRESSOR_FAILURES_PER_ROOM_DAY = 1 / 100
REPAIR_S = (2 * 3600.0, 6 * 3600.0)
DOOR_PROPPED_PER_ROOM_DAY = 1 / 20
DOOR_PROPPED_S = (600.0, 2400.0)
GNSS_OUTAGES_PER_TRUCK_DAY = 2 / 30
GNSS_OUTAGE_S = (240.0, 0.9, 60.0, 2700.0)  # median, sigma, shortest, longest

# Dispatchers.
ACK_MEDIAN_S = {"critical": 150.0, "major": 300.0, "minor": 480.0, "warning": 720.0}
ACK_SIGMA = 0.7
NIGHT_SLOWER = 1.8  # 00:00-07:00 local: one person on shift, and not at the screen all the time
RESOLVE_MEDIAN_S = {"bonded_exit": 1200.0, "gate_hold": 720.0}
MISSED_P = 0.05  # alerts that clear by themselves and that nobody acknowledges
SHIFTS = (
    (0, "调度员王强 dispatcher-wang"),
    (8, "调度员张伟 dispatcher-zhang"),
    (16, "调度员李娜 dispatcher-li"),
)
CUSTOMS_OFFICER = "卡口关员刘洋 customs-liu"
ACK_NOTES = {
    "temp_excursion": "已通知冷库值班员检查制冷机组和库门 / cold-store technician checks the unit and the door",
    "temp_pre_alarm": "已提醒冷库减少开门并关注温度 / cold store asked to keep the door shut and watch the temperature",
    "sensor_offline": "已通知运维检查传感器与网关 / maintenance asked to check the sensor and its gateway",
    "bonded_exit": "已电话联系司机核实位置 / calling the driver to confirm the truck's position",
    "corridor_deviation": "已联系司机返回监管通道 / driver told to return to the corridor",
    "gate_hold": "已通知卡口关员核对核放单与货物 / gate officer asked to check the release note against the load",
    "gps_lost": "已联系司机检查车载终端 / driver asked to check the vehicle terminal",
    "low_soc": "已安排车辆返回场站充电 / truck sent back to the depot to charge",
}
RESOLVE_CORNER = (
    "核查轨迹：两次定位之间的连线切过路口，车辆未离开监管通道，误报 / "
    "track checked: the line between two fixes cut a corner, the truck stayed on its corridor (false alarm)"
)
RESOLVE_RETURNED = "司机已确认位置，车辆在监管通道内 / driver confirmed the position, the truck is on its corridor"
RESOLVE_HOLD = (
    "海关人工查验，货物与核放单相符，准予放行 / customs inspected the load, it matches the release note: released"
)
PUBLISH_DELAY_S = (0.05, 0.3)  # the relay sends what a commit produced within a fraction of a second

COPY_POSITIONS = (
    "COPY positions (ts, device_id, seq, received_at, lat, lon, fix, speed_kmh, heading_deg, hdop, sats, "
    "soc_pct, energy_kwh, h2_kg, odometer_km) FROM STDIN"
)
COPY_TEMPERATURES = (
    "COPY temperatures (ts, device_id, seq, received_at, temp_c, rh_pct, door_open, battery_v) FROM STDIN"
)
COPY_RFID = "COPY rfid_reads (ts, device_id, seq, received_at, epc, antenna, rssi_dbm, gate_id, direction) FROM STDIN"
STAGE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS history_tags (LIKE tags INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS history_notes (LIKE release_notes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
)
TAGS_SQL = (
    "INSERT INTO tags (epc, kind, customs_status, vehicle_id, description) "
    "SELECT epc, kind, customs_status, vehicle_id, description FROM history_tags ON CONFLICT (epc) DO UPDATE SET "
    "kind = EXCLUDED.kind, customs_status = EXCLUDED.customs_status, vehicle_id = EXCLUDED.vehicle_id, "
    "description = EXCLUDED.description, updated_at = now()"
)
NOTES_SQL = (
    "INSERT INTO release_notes (id, vehicle_id, epcs, valid_from, valid_until, created_by, created_at) "
    "SELECT id, vehicle_id, epcs, valid_from, valid_until, created_by, created_at FROM history_notes "
    "ON CONFLICT (id) DO NOTHING"
)
GEOFENCE_SQL = (
    "INSERT INTO geofences (id, name, kind, feature, width_m) VALUES (%s, %s, %s, %s, %s) "
    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, feature = EXCLUDED.feature, "
    "width_m = EXCLUDED.width_m, updated_at = now()"
)
OVERLAP_SQL = (
    "SELECT EXISTS (SELECT 1 FROM positions WHERE device_id = ANY(%(d)s) AND ts >= %(a)s AND ts < %(b)s) "
    "OR EXISTS (SELECT 1 FROM temperatures WHERE device_id = ANY(%(d)s) AND ts >= %(a)s AND ts < %(b)s) "
    "OR EXISTS (SELECT 1 FROM rfid_reads WHERE device_id = ANY(%(d)s) AND ts >= %(a)s AND ts < %(b)s)"
)
# The store stamps a new alert with the database clock; history is raised when its rule was met.
OPENED_SQL = (
    "UPDATE alerts SET raised_at = opened_at, updated_at = opened_at "
    "WHERE type = %s AND subject_id = %s AND opened_at = %s RETURNING id"
)
# What POST /alerts/{id}/ack and /resolve do (api/routers/alerts.py), at a simulated time.
ACK_SQL = (
    "WITH a AS (UPDATE alerts a SET status = 'acknowledged', acked_by = %(who)s, acked_at = %(at)s, "
    "updated_at = %(at)s, note = coalesce(%(note)s, a.note) WHERE a.id = %(id)s AND a.status = 'active' "
    "RETURNING a.id, bondwatch_alert_object(a) AS obj) "
    "INSERT INTO alert_events (site, alert_id, at, event, actor, note, alert, published_at) "
    "SELECT %(site)s, a.id, %(at)s, 'acknowledged', %(who)s, %(note)s, a.obj, %(published)s FROM a RETURNING id"
)
RESOLVE_SQL = (
    "WITH a AS (UPDATE alerts a SET status = 'cleared', cleared_at = %(at)s, resolved_by = %(who)s, "
    "resolved_at = %(at)s, updated_at = %(at)s, note = coalesce(%(note)s, a.note) "
    "WHERE a.id = %(id)s AND a.status <> 'cleared' RETURNING a.id, bondwatch_alert_object(a) AS obj) "
    "INSERT INTO alert_events (site, alert_id, at, event, actor, note, alert, published_at) "
    "SELECT %(site)s, a.id, %(at)s, 'resolved', %(who)s, %(note)s, a.obj, %(published)s FROM a RETURNING id"
)
# What the live loop's Store.escalate does on the platform's clock.
ESCALATE_SQL = (
    "WITH a AS (UPDATE alerts a SET escalated_at = %(at)s, escalation_level = escalation_level + 1, "
    "updated_at = %(at)s WHERE a.id = %(id)s AND a.status = 'active' AND a.severity = 'critical' "
    "RETURNING a.id, bondwatch_alert_object(a) AS obj) "
    "INSERT INTO alert_events (site, alert_id, at, event, actor, note, alert, published_at) "
    "SELECT %(site)s, a.id, %(at)s, 'escalated', %(who)s, NULL, a.obj, %(published)s FROM a RETURNING id"
)
# The engine's own events were stamped with the database clock and are unsent: date them on the simulated
# platform clock (an alert is raised when its rule was met, a change when the engine made it), mark them sent.
ENGINE_EVENTS_SQL = (
    "UPDATE alert_events e SET at = v.at, published_at = v.at + make_interval(secs => %s + (e.id %% 25) * %s), "
    "alert = e.alert || jsonb_build_object('raised_at', (e.alert ->> 'opened_at')::timestamptz, 'updated_at', v.at) "
    "FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(alert_id, event, at) "
    "WHERE e.alert_id = v.alert_id AND e.event = v.event AND e.published_at IS NULL AND e.actor = %s"
)
UPDATED_SQL = (
    "UPDATE alerts a SET updated_at = greatest(a.opened_at, a.cleared_at, a.acked_at, a.resolved_at, "
    "a.escalated_at, v.last) FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, last) WHERE a.id = v.id"
)
DECIDED_SQL = (
    "UPDATE gate_passages p SET decided_at = v.at, "
    "published_at = CASE WHEN p.decision IS NULL THEN NULL ELSE v.at + make_interval(secs => %s) END "
    "FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, at) WHERE p.id = v.id"
)
USED_SQL = (
    "UPDATE release_notes r SET used_at = p.decided_at FROM gate_passages p "
    "WHERE p.id = ANY(%s) AND r.id = p.release_note_id AND r.used_passage_id = p.id"
)


class HistoryError(BondWatchError, ValueError):
    """The history cannot be seeded: bad arguments, readings already there, or a model worker failed."""


@dataclass(frozen=True)
class HistorySummary:
    start: datetime
    end: datetime
    positions: int
    temperatures: int
    rfid_reads: int
    passages: int
    alerts: int
    seconds: float


def seed_history(
    db_url: str,
    site: str,
    start: datetime,
    days: float,
    *,
    trucks: int = 24,
    rooms: int = 12,
    gps_every_s: float = 60.0,
    temp_every_s: float = 60.0,
    seed: int = 716,
    progress: bool = False,
    prefix: str = "",
) -> HistorySummary:
    """Write ``days`` of the site from ``start`` (aware) into the database at ``db_url``; see the module doc.

    Readings fall in [start, start + days); a gate passage read just before the end is decided up to 10 s
    after it. Refuses (:class:`HistoryError`) when the history's devices already have readings in that span.
    """
    began = time.perf_counter()
    _check(start, days, trucks, rooms, gps_every_s, temp_every_s, prefix)
    start_us = _us(start)
    end_us = start_us + round(days * 86_400e6)
    bounds = [(lo, min(lo + CHUNK_S * 1_000_000, end_us)) for lo in range(start_us, end_us, CHUNK_S * 1_000_000)]
    gps = _Grid(start_us, end_us, round(gps_every_s * 1e6))
    temp = _Grid(start_us, end_us, round(temp_every_s * 1e6))
    fleet = Fleet(seed, n=trucks)
    store = ColdStore(seed)
    del store.rooms[rooms:]
    plan = _Plan.draw(seed, [t.vehicle_id for t in fleet.trucks], [r.room_id for r in store.rooms], start_us, end_us)
    settings = load_settings(RulesSettings, site=site, db_url=db_url)
    devices = [prefix + d for d in (*(t.device_id for t in fleet.trucks), *(r.device_id for r in store.rooms))]
    _refuse_overlap(db_url, [*devices, *(f"{prefix}rdr-{gate}" for gate in GATES)], start_us, end_us, prefix)
    # Fork, not spawn: spawn runs the caller's main script again in each worker, which breaks any script
    # without a __main__ guard. The workers are forked before this function opens its connection or starts the
    # progress bar's thread, and only run the models.
    ctx = multiprocessing.get_context("fork")
    fleet_q, cold_q = ctx.Queue(), ctx.Queue()
    workers = [
        ctx.Process(target=_fleet_worker, args=(seed, trucks, gps, bounds, fleet_q), name="history-fleet"),
        ctx.Process(target=_coldstore_worker, args=(seed, rooms, temp, bounds, plan, cold_q), name="history-coldstore"),
    ]
    for worker in workers:
        worker.daemon = True
        worker.start()
    try:
        with (
            psycopg.connect(db_url, application_name="bondwatch-history") as conn,
            _quiet("rules"),
            _progress_bar(progress, len(bounds)) as advance,
            _survivors_frozen() as freeze,
        ):
            seeder = _Seeder(conn, settings, prefix, seed, fleet, store, gps, temp, plan)
            seeder.write_registry()
            for lo, hi in bounds:
                seeder.chunk(lo, hi, _receive(fleet_q, workers[0]), _receive(cold_q, workers[1]))
                freeze()
                advance(_dt(hi))
            seeder.finish()
    except BaseException:
        for worker in workers:
            worker.terminate()
        raise
    finally:
        for worker in workers:
            worker.join(timeout=10.0)  # done by now unless this failed; a stuck child must not hang the caller
            if worker.is_alive():
                worker.terminate()
                worker.join()
    return HistorySummary(
        start=_dt(start_us),
        end=_dt(end_us),
        positions=seeder.counts["gps"],
        temperatures=seeder.counts["temp"],
        rfid_reads=seeder.counts["rfid"],
        passages=seeder.counts["passages"],
        alerts=len(seeder.alert_ids),
        seconds=time.perf_counter() - began,
    )


def previous_month_start(today: date | None = None) -> datetime:
    """Midnight (Asia/Shanghai) of the first day of the month before ``today``'s (local) month."""
    today = today or datetime.now(ZONE).date()
    last_of_previous = today.replace(day=1) - timedelta(days=1)
    return datetime(last_of_previous.year, last_of_previous.month, 1, tzinfo=ZONE)


def local_midnight(day: str) -> datetime:
    """``YYYY-MM-DD`` as midnight in Asia/Shanghai."""
    parsed = date.fromisoformat(day)
    return datetime(parsed.year, parsed.month, parsed.day, tzinfo=ZONE)


def describe(summary: HistorySummary) -> str:
    """The summary as people read it, Chinese first."""
    start, end = summary.start.astimezone(ZONE), summary.end.astimezone(ZONE)
    days = (summary.end - summary.start).total_seconds() / 86_400
    rows = (
        ("定位 positions", summary.positions),
        ("温度 temperatures", summary.temperatures),
        ("RFID 读取 rfid reads", summary.rfid_reads),
        ("卡口通行 gate passages", summary.passages),
        ("告警 alerts", summary.alerts),
    )
    lines = [f"历史数据 history {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} (+08:00), {days:g} 天 days"]
    lines += [f"  {name:<24}{n:>12,}" for name, n in rows]
    lines.append(f"  {'用时 took':<24}{summary.seconds:>10.1f} s")
    return "\n".join(lines)


# ---------------------------------------------------------------- time and plan


def _us(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _check(
    start: datetime, days: float, trucks: int, rooms: int, gps_every_s: float, temp_every_s: float, prefix: str
) -> None:
    if start.tzinfo is None or start.utcoffset() is None:
        raise HistoryError("start must be an aware datetime (e.g. with tzinfo=ZoneInfo('Asia/Shanghai'))")
    if not (math.isfinite(days) and days > 0):
        raise HistoryError(f"days must be a positive number, got {days!r}")
    if trucks < 1:
        raise HistoryError(f"trucks must be at least 1, got {trucks}")
    if not 1 <= rooms <= len(ROOMS):
        raise HistoryError(f"rooms must be 1 to {len(ROOMS)} (the cold store's rooms), got {rooms}")
    for name, every in (("gps_every_s", gps_every_s), ("temp_every_s", temp_every_s)):
        if not (math.isfinite(every) and 1.0 <= every <= CHUNK_S):
            raise HistoryError(f"{name} must be 1 to {CHUNK_S} seconds, got {every!r}")
    if len(prefix) > PREFIX_MAX or not re.fullmatch(r"[A-Za-z0-9_.-]*", prefix):
        raise HistoryError(f"prefix {prefix!r} must be up to {PREFIX_MAX} of [A-Za-z0-9_.-]")


def _refuse_overlap(db_url: str, devices: list[str], start: int, end: int, prefix: str) -> None:
    with psycopg.connect(db_url, application_name="bondwatch-history") as conn:
        row = conn.execute(OVERLAP_SQL, {"d": devices, "a": _dt(start), "b": _dt(end)}).fetchone()
    if row and row[0]:
        raise HistoryError(
            f"devices of prefix {prefix!r} already have readings between {_dt(start)} and {_dt(end)}: "
            "that history is seeded; choose another prefix or another span"
        )


@dataclass(frozen=True)
class _Grid:
    """Reading times of one kind: start + k·every for k = 0, 1, ... before end (µs since the epoch)."""

    start: int
    end: int
    every: int

    @property
    def total(self) -> int:
        return -((self.start - self.end) // self.every)

    def before(self, us: int) -> int:
        """How many readings come before ``us``."""
        return 0 if us <= self.start else min(-((self.start - us) // self.every), self.total)

    def indices(self, lo: int, hi: int) -> range:
        return range(self.before(lo), self.before(hi))

    def at(self, k: int) -> int:
        return self.start + k * self.every


@dataclass(frozen=True)
class _Plan:
    """Incidents drawn up front from the seed, so that workers and the writer agree on them."""

    failures: tuple[tuple[int, int, str], ...]  # (from µs, until µs, room id)
    doors: tuple[tuple[str, int, float], ...]  # (room id, from µs, seconds)
    outages: tuple[tuple[tuple[int, int], ...], ...]  # per truck: (from µs, until µs) without a fix

    @classmethod
    def draw(cls, seed: int, vehicles: Sequence[str], rooms: Sequence[str], start: int, end: int) -> _Plan:
        day = 86_400e6
        failures: list[tuple[int, int, str]] = []
        for room in rooms:
            rng = random.Random(f"{seed}/history/compressor/{room}")
            t = float(start)
            while True:
                t += rng.expovariate(COMPRESSOR_FAILURES_PER_ROOM_DAY) * day
                if t >= end:
                    break
                until = t + rng.uniform(*REPAIR_S) * 1e6
                failures.append((round(t), round(until), room))
                t = until + 3600e6  # one failure at a time: the store models one window per room
        if not failures:
            rng = random.Random(f"{seed}/history/compressor")
            t = start + rng.uniform(0.1, 0.5) * (end - start)
            failures.append((round(t), round(t + rng.uniform(*REPAIR_S) * 1e6), rng.choice(list(rooms))))
        doors: list[tuple[str, int, float]] = []
        for room in rooms:
            rng = random.Random(f"{seed}/history/doors/{room}")
            t = float(start)
            while (t := t + rng.expovariate(DOOR_PROPPED_PER_ROOM_DAY) * day) < end:
                doors.append((room, round(t), rng.uniform(*DOOR_PROPPED_S)))
        outages: list[tuple[tuple[int, int], ...]] = []
        median, sigma, shortest, longest = GNSS_OUTAGE_S
        for vehicle in vehicles:
            rng = random.Random(f"{seed}/history/gnss/{vehicle}")
            spans: list[tuple[int, int]] = []
            t = float(start)
            while (t := t + rng.expovariate(GNSS_OUTAGES_PER_TRUCK_DAY) * day) < end:
                seconds = min(longest, max(shortest, rng.lognormvariate(math.log(median), sigma)))
                spans.append((round(t), round(t + seconds * 1e6)))
                t += seconds * 1e6
            outages.append(tuple(spans))
        return cls(tuple(sorted(failures)), tuple(doors), tuple(outages))


# ---------------------------------------------------------------- model workers


@dataclass(frozen=True)
class _FleetChunk:
    values: npt.NDArray[np.float64]  # (steps, trucks, GPS_FIELDS); NaN where the terminal sends nothing
    passages: list[GatePassage]
    tags: list[tuple[str, dict[str, Any]]]  # tags issued since the previous chunk


@dataclass(frozen=True)
class _WorkerFailed:
    text: str


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _fleet_worker(seed: int, trucks: int, grid: _Grid, bounds: list[tuple[int, int]], out: Any) -> None:
    """The fleet stepped at the GPS cadence; one message per chunk."""
    try:
        fleet = Fleet(seed, n=trucks)
        every_s = grid.every / 1e6
        issued = 0
        for lo, hi in bounds:
            steps = grid.indices(lo, hi)
            values = np.full((len(steps), trucks, len(GPS_FIELDS)), math.nan)
            passages: list[GatePassage] = []
            for i, k in enumerate(steps):
                now = _dt(grid.at(k))
                if k:
                    fleet.step(now, every_s)
                # None (an FCEV's energy, a BEV's hydrogen) becomes NaN on the way into the float array.
                values[i] = [(p.lat, p.lon, p.speed_kmh, p.heading_deg, p.hdop, p.sats, p.soc_pct, p.energy_kwh,
                              p.h2_kg, p.odometer_km) for _, p in fleet.positions(now)]  # fmt: skip
                passages += fleet.gate_passages(now)
            tags = fleet.tags()
            out.put(_FleetChunk(values, passages, list(itertools.islice(tags.items(), issued, None))))
            issued = len(tags)
    except BaseException:
        out.put(_WorkerFailed(traceback.format_exc()))
        raise


def _coldstore_worker(seed: int, rooms: int, grid: _Grid, bounds: list[tuple[int, int]], plan: _Plan, out: Any) -> None:
    """The cold rooms stepped at the sensors' cadence, with the plan's failures and propped doors."""
    try:
        store = ColdStore(seed)
        del store.rooms[rooms:]
        for room, at, seconds in plan.doors:
            store.hold_door_open(room, _dt(at), seconds)
        failures = list(plan.failures)
        every_s = grid.every / 1e6
        for lo, hi in bounds:
            steps = grid.indices(lo, hi)
            values = np.empty((len(steps), rooms, len(TEMP_FIELDS)))
            for i, k in enumerate(steps):
                now = grid.at(k)
                if k:
                    # Set before the step that contains the failure, so the model splits its sub-steps there.
                    while failures and failures[0][0] < now:
                        begin, until, room = failures.pop(0)
                        store.fail_compressor(room, _dt(begin))
                        store.repair_compressor(room, _dt(until))
                    store.step(_dt(now), every_s)
                for j, (_, r) in enumerate(store.readings(_dt(now))):
                    values[i, j] = (r.temp_c, _num(r.rh_pct), 1.0 if r.door_open else 0.0, _num(r.battery_v))
            out.put(values)
    except BaseException:
        out.put(_WorkerFailed(traceback.format_exc()))
        raise


def _receive(q: Any, worker: multiprocessing.process.BaseProcess) -> Any:
    while True:
        try:
            item = q.get(timeout=1.0)
        except queue.Empty:
            if not worker.is_alive():
                raise HistoryError(f"model worker {worker.name} stopped (exit code {worker.exitcode})") from None
            continue
        if isinstance(item, _WorkerFailed):
            raise HistoryError(f"model worker {worker.name} failed:\n{item.text}")
        return item


# ---------------------------------------------------------------- COPY in binary, a column at a time

PG_EPOCH_US = 946_684_800_000_000  # binary timestamptz counts microseconds from 2000-01-01 UTC
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"
Bytes = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]


def _fixed(values: npt.ArrayLike, dtype: str, null: Mask | None = None) -> tuple[Bytes, Mask]:
    """A fixed-width column (``dtype`` big-endian, e.g. ">f8") as each row's length word and value bytes."""
    column = np.asarray(values).astype(dtype)
    n, size = len(column), column.dtype.itemsize
    block = np.empty((n, 4 + size), np.uint8)
    block[:, :4] = np.frombuffer(size.to_bytes(4, "big"), np.uint8)
    block[:, 4:] = column.view(np.uint8).reshape(n, size)
    keep = np.ones(block.shape, bool)
    if null is not None:
        block[null, :4] = 0xFF  # length -1: NULL, and no value bytes
        keep[null, 4:] = False
    return block, keep


def _text(index: npt.ArrayLike, choices: Sequence[str]) -> tuple[Bytes, Mask]:
    """A text column whose row ``i`` is ``choices[index[i]]``."""
    encoded = [c.encode() for c in choices]
    width = max(map(len, encoded))
    table = np.zeros((len(encoded), 4 + width), np.uint8)
    keep = np.zeros(table.shape, bool)
    for i, e in enumerate(encoded):
        table[i, :4] = np.frombuffer(len(e).to_bytes(4, "big"), np.uint8)
        table[i, 4 : 4 + len(e)] = np.frombuffer(e, np.uint8)
        keep[i, : 4 + len(e)] = True
    rows = np.asarray(index).astype(np.intp)
    return table[rows], keep[rows]


def _binary_rows(columns: list[tuple[Bytes, Mask]]) -> bytes:
    """PostgreSQL's binary COPY stream of the rows: per row the field count, then each field's length and bytes.

    Readings are a few million values a month; formatting them row by row costs more than the rules engine.
    """
    n = len(columns[0][0])
    count = np.frombuffer(len(columns).to_bytes(2, "big"), np.uint8)
    blocks = np.hstack([np.broadcast_to(count, (n, 2)), *(b for b, _ in columns)])
    keep = np.hstack([np.ones((n, 2), bool), *(k for _, k in columns)])
    return COPY_SIGNATURE + bytes(blocks[keep].tobytes()) + COPY_TRAILER


def _timestamps(us: npt.ArrayLike) -> tuple[Bytes, Mask]:
    return _fixed(np.asarray(us, np.int64) - PG_EPOCH_US, ">i8")


Model = TypeVar("Model", bound=BaseModel)


def _maker(cls: type[Model]) -> Callable[[dict[str, Any]], Model]:
    """A constructor of ``cls`` from a dict holding every field, for values that are valid by construction.

    What ``model_construct`` does without its per-call work; the engine takes about two million readings a
    month, all of them the models' own values (tests/simulators/test_history.py checks the result against
    ``model_validate``).
    """
    fields = frozenset(cls.model_fields)
    new, put = object.__new__, object.__setattr__

    def make(values: dict[str, Any]) -> Model:
        reading = new(cls)
        put(reading, "__dict__", values)
        put(reading, "__pydantic_fields_set__", fields)
        put(reading, "__pydantic_extra__", None)
        put(reading, "__pydantic_private__", None)
        return reading

    return make


def _opt(value: float) -> float | None:
    return None if value != value else value  # NaN: the field is absent


# ---------------------------------------------------------------- the writer and the engine


class _CoveredFences(FenceSet):
    """The registry's fences, with an exact shortcut for the segment test the geofence rule runs on every fix.

    Over a month of fixes the overlay in :meth:`FenceSet.segment_outside_m` is most of the engine's time, and
    almost every segment lies inside: a line the allowed area covers has nothing outside it, and the prepared
    predicate (the geometry's own method, which skips the array machinery of ``shapely.covers``) costs about a
    hundredth of the overlay. Anything else goes to the overlay, so the answers are the same (tested).
    """

    def segment_outside_m(self, x0: float, y0: float, x1: float, y1: float) -> float:
        allowed = self.allowed
        if allowed is not None and (x0, y0) != (x1, y1) and allowed.covers(shapely.linestrings([(x0, y0), (x1, y1)])):
            return 0.0
        return super().segment_outside_m(x0, y0, x1, y1)


@dataclass
class _Burst:
    """One truck in front of one gate's reader: its reads, in time order (ms since the epoch)."""

    reader: str
    gate_id: str
    direction: str
    reads: list[tuple[int, int, str, float]]  # (ms, order of generation, epc, rssi)
    scheduled: bool = False


@dataclass(order=True)
class _Action:
    at: float
    order: int
    kind: str = field(compare=False)  # ack | resolve | escalate
    alert_id: int = field(compare=False)


def _upsert_sql(table: RegistryTable) -> sql.Composed:
    """The API's upsert of one registry table (api/registry.py), for a synchronous connection."""
    cols = [table.key, *table.columns]
    return sql.SQL(
        "INSERT INTO {table} ({cols}) VALUES ({params}) ON CONFLICT ({key}) DO UPDATE SET {sets}, updated_at = now()"
    ).format(
        table=sql.Identifier(table.table),
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        params=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        key=sql.Identifier(table.key),
        sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in table.columns),
    )


def _shift_of(at: datetime) -> str:
    hour = at.astimezone(ZONE).hour
    return next(name for begins, name in reversed(SHIFTS) if hour >= begins)


class _Seeder:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        settings: RulesSettings,
        prefix: str,
        seed: int,
        fleet: Fleet,
        store: ColdStore,
        gps: _Grid,
        temp: _Grid,
        plan: _Plan,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.site = settings.site
        self.prefix = prefix
        self.fleet = fleet
        self.coldstore = store
        self.gps = gps
        self.temp = temp
        self.plan = plan
        self.end_s = gps.end / 1e6
        self.gps_devices = [prefix + t.device_id for t in fleet.trucks]
        self.temp_devices = [prefix + r.device_id for r in store.rooms]
        self.readers = {gate: f"{prefix}rdr-{gate}" for gate in GATES}
        self.counts = {"gps": 0, "temp": 0, "rfid": 0, "passages": 0}
        self.rng_rfid = random.Random(f"{seed}/history/rfid")
        self.rng_notes = random.Random(f"{seed}/history/notes")
        self.rng_dispatch = random.Random(f"{seed}/history/dispatch")
        self.rng_delay = np.random.default_rng([seed, 7160])
        # A passage's id is its gate and first read to the millisecond: another prefix reads a few ms apart.
        digest = int.from_bytes(hashlib.sha256(prefix.encode()).digest()[:4], "big")
        self.read_offset_ms = 1 + digest % 997 if prefix else 0
        self.last_fix: list[tuple[float, float]] = [(math.nan, math.nan)] * len(self.gps_devices)
        self.latest: dict[str, tuple[str, datetime, int, datetime, GpsReading | TempReading | RfidReading]] = {}
        self.rfid_seq = dict.fromkeys(self.readers.values(), 0)
        self.bursts: list[_Burst] = []
        self.read_order = itertools.count()
        self.closing: list[float] = []  # heap: ticks that close passage windows
        self.carry: list[Observation] = []
        self.cut_ms = 0  # gate reads up to here are handed to the engine; later passages read later
        self.gps_reading = _maker(GpsReading)
        self.temp_reading = _maker(TempReading)
        self.rfid_reading = _maker(RfidReading)
        self.rng_sats = np.random.default_rng([seed, 7161])
        self.registry = Registry()
        self.engine: Engine | None = None
        self.db = Store(conn, self.site)
        # Alerts of this history: open ones by (type, subject), rule changes this chunk, dispatcher work to do.
        self.alert_ids: list[int] = []
        self.open_alerts: dict[tuple[str, str], int] = {}
        self.alert_info: dict[int, tuple[str, str, dict[str, Any]]] = {}
        self.touched: dict[int, float] = {}  # alert id -> the engine's last change (its updated_at)
        self.engine_events: list[tuple[int, str, float]] = []
        self.actions: list[_Action] = []
        self.action_order = itertools.count()
        self.decided: list[tuple[str, float]] = []
        conn.execute("SELECT set_config('TimeZone', %s, false)", (settings.rules_timezone,))
        for statement in STAGE_SQL:
            conn.execute(statement)
        conn.commit()

    # ------------------------------------------------------------ registry
    def write_registry(self) -> None:
        """The standard site through the API's own validation, upserted; then the engine's registry."""
        p = self.prefix
        tables: dict[str, tuple[RegistryTable, type[BaseModel]]] = {
            "profiles": (profiles_api.TABLE, profiles_api.ProfileIn),
            "devices": (devices_api.TABLE, devices_api.DeviceIn),
            "vehicles": (vehicles_api.TABLE, vehicles_api.VehicleIn),
        }
        with self.conn.cursor() as cur:
            for path, body in site_registry(self.fleet, self.coldstore, GATES):
                _, resource, key = path.split("/")
                if resource == "geofences":
                    fence = parse_feature(body, key)
                    cur.execute(GEOFENCE_SQL, (fence.id, fence.name, fence.kind, Jsonb(fence.feature), fence.width_m))
                    continue
                body = dict(body)
                if resource in ("devices", "vehicles"):
                    key = p + key
                    for name in ("vehicle_id", "device_id"):
                        if body.get(name):
                            body[name] = p + body[name]
                    if body.get("tag_epc"):
                        body["tag_epc"] = prefixed_epc(body["tag_epc"], p)
                table, model = tables[resource]
                values = model.model_validate(body).model_dump()
                cur.execute(_upsert_sql(table), (key, *(values[c] for c in table.columns)))
        self._write_tags(list(self.fleet.tags().items()))
        self.conn.commit()
        # Every table but tags: a month leaves a quarter of a million, none of which this history's gates will
        # read but its own, which _write_tags hands to the registry as it writes them.
        self.registry.reload(self.conn, set(TABLES) - {"tags"}, self.settings.rules_crs)
        self.registry.fences = _CoveredFences(self._geofences(), self.settings.rules_crs)
        self.engine = Engine(self.settings, self.registry)
        # Silence is judged from the first reading on: there is no backlog to read first.
        self.engine.silence.judging_from = self.gps.start / 1e6

    def _geofences(self) -> list[Geofence]:
        fences = []
        for fence_id, feature in self.conn.execute("SELECT id, feature FROM geofences ORDER BY id"):
            try:
                fences.append(parse_feature(feature, fence_id))
            except GeofenceInvalid as exc:  # as the registry does: a hand-written row may be unusable
                log.error("geofence %s ignored: %s", fence_id, exc)
        self.conn.commit()
        return fences

    def _write_tags(self, tags: list[tuple[str, dict[str, Any]]]) -> None:
        if not tags:
            return
        p = self.prefix
        rows = []
        for epc, body in tags:
            vehicle = p + body["vehicle_id"] if body.get("vehicle_id") else None
            tag = Tag(prefixed_epc(epc, p), body["kind"], body["customs_status"], vehicle, body.get("description"))
            rows.append(tag)
            self.registry.tags[tag.epc] = tag
        with self.conn.cursor() as cur:
            with cur.copy("COPY history_tags (epc, kind, customs_status, vehicle_id, description) FROM STDIN") as copy:
                for t in rows:
                    copy.write_row((t.epc, t.kind, t.customs_status, t.vehicle_id, t.description))
            cur.execute(TAGS_SQL)

    # ------------------------------------------------------------ one chunk
    def chunk(self, lo: int, hi: int, fleet: _FleetChunk, cold: npt.NDArray[np.float64]) -> None:
        lo_s = lo / 1e6
        for note_id in [n.id for n in self.registry.notes.values() if n.valid_until < lo_s - NOTES_KEPT_S]:
            del self.registry.notes[note_id]
        self._write_tags(fleet.tags)
        self._gate_bursts(fleet.passages)
        steps = self.gps.indices(lo, hi)
        if len(steps):
            self.cut_ms = self.gps.at(steps[-1]) // 1000
        observations = self.carry
        observations += self._positions(steps, fleet.values)
        observations += self._temperatures(self.temp.indices(lo, hi), cold)
        observations += self._gate_reads(self.cut_ms)
        observations.sort(key=lambda o: o.t)
        ticks = {self.gps.at(k) / 1e6 for k in steps} | {self.temp.at(k) / 1e6 for k in self.temp.indices(lo, hi)}
        while self.closing and self.closing[0] < hi / 1e6:
            ticks.add(heapq.heappop(self.closing))
        self.carry = self._judge(observations, sorted(ticks))
        self._fix_up()
        self.conn.commit()

    def finish(self) -> None:
        """The last passages decided, dispatchers up to the end, latest state per device."""
        observations = self.carry + self._gate_reads(self.gps.end // 1000 - 1)
        observations.sort(key=lambda o: o.t)
        ticks = sorted({*self.closing, *(o.t for o in observations[-1:])})
        self.closing = []
        self._judge(observations, ticks)
        self._dispatch(self.end_s)
        self._fix_up()
        with self.conn.cursor() as cur:
            cur.executemany(
                UPSERT_LATEST,
                [
                    (device, kind, ts, seq, received, Jsonb(r.model_dump(mode="json", exclude_none=True)))
                    for device, (kind, ts, seq, received, r) in sorted(self.latest.items())
                ],
            )
        self.conn.commit()

    def _delays(self, shape: tuple[int, int], median_sigma: tuple[float, float]) -> npt.NDArray[np.int64]:
        median, sigma = median_sigma
        return np.rint(self.rng_delay.lognormal(math.log(median), sigma, size=shape) * 1e6).astype(np.int64)

    def _positions(self, steps: range, values: npt.NDArray[np.float64]) -> list[Observation]:
        if not len(steps):
            return []
        n, trucks = values.shape[:2]
        times = np.array([self.gps.at(k) for k in steps], dtype=np.int64)
        lat, lon, speed, heading, hdop, sats, soc, energy, h2, odometer = (values[:, :, f].copy() for f in range(10))
        # GNSS outages: the terminal keeps reporting (charge, odometer) with its last position and no fix.
        outage = np.zeros((n, trucks), dtype=bool)
        for j, spans in enumerate(self.plan.outages):
            for a, b in spans:
                if a <= times[-1] and b > times[0]:
                    outage[:, j] |= (times >= a) & (times < b)
        valid = np.where(~outage, np.arange(n)[:, None], -1)
        last = np.maximum.accumulate(valid, axis=0)  # the latest step with a fix, -1: before this chunk
        carried = np.array(self.last_fix)
        held_lat = np.where(last >= 0, lat[np.maximum(last, 0), np.arange(trucks)], carried[:, 0])
        held_lon = np.where(last >= 0, lon[np.maximum(last, 0), np.arange(trucks)], carried[:, 1])
        no_fix = outage & ~np.isnan(held_lat)  # nothing to hold at the very start: report the fix after all
        lat, lon = np.where(no_fix, held_lat, lat), np.where(no_fix, held_lon, lon)
        for column in (speed, heading, hdop):
            column[no_fix] = np.nan
        sats[no_fix] = self.rng_sats.integers(0, 4, int(no_fix.sum()))
        self.last_fix = list(zip(lat[-1].tolist(), lon[-1].tolist(), strict=True))
        received = times[:, None] + self._delays((n, trucks), GPS_DELAY)
        devices = self.gps_devices
        rows = _binary_rows([
            _timestamps(np.repeat(times, trucks)), _text(np.tile(np.arange(trucks), n), devices),
            _fixed(np.repeat(np.asarray(steps), trucks), ">i8"), _timestamps(received.ravel()),
            _fixed(lat.ravel(), ">f8"), _fixed(lon.ravel(), ">f8"), _text(no_fix.ravel(), ("3d", "none")),
            *(_fixed(c.ravel(), ">f4", np.isnan(c.ravel())) for c in (speed, heading, hdop)),
            _fixed(sats.ravel(), ">i2"), _fixed(soc.ravel(), ">f4"),
            *(_fixed(c.ravel(), ">f8", np.isnan(c.ravel())) for c in (energy, h2, odometer)),
        ])  # fmt: skip
        with self.conn.cursor() as cur, cur.copy(COPY_POSITIONS + " (FORMAT BINARY)") as copy:
            copy.write(rows)
        out: list[Observation] = []
        make = self.gps_reading
        fixes = ("3d", "none")
        table = np.stack((lat, lon, no_fix, speed, heading, hdop, sats, soc, energy, h2, odometer), axis=2).tolist()
        for i, k in enumerate(steps):
            us = int(times[i])
            ts, t = _dt(us), us / 1e6
            for j, (la, lo, nf, sp, he, hd, sa, so, en, hy, od) in enumerate(table[i]):
                reading = make({"ts": ts, "seq": k, "lat": la, "lon": lo, "fix": fixes[nf > 0], "speed_kmh": _opt(sp),
                                "heading_deg": _opt(he), "hdop": _opt(hd), "sats": int(sa), "soc_pct": so,
                                "energy_kwh": _opt(en), "h2_kg": _opt(hy), "odometer_km": od})  # fmt: skip
                out.append(Observation("gps", devices[j], reading, t, t))
        self._remember("gps", devices, out[-trucks:], received[-1])
        self.counts["gps"] += len(out)
        return out

    def _temperatures(self, steps: range, values: npt.NDArray[np.float64]) -> list[Observation]:
        if not len(steps):
            return []
        n, rooms = values.shape[:2]
        times = np.array([self.temp.at(k) for k in steps], dtype=np.int64)
        temp_c, rh, door, battery = (values[:, :, f] for f in range(4))
        received = times[:, None] + self._delays((n, rooms), TEMP_DELAY)
        devices = self.temp_devices
        rows = _binary_rows([
            _timestamps(np.repeat(times, rooms)), _text(np.tile(np.arange(rooms), n), devices),
            _fixed(np.repeat(np.asarray(steps), rooms), ">i8"), _timestamps(received.ravel()),
            _fixed(temp_c.ravel(), ">f4"), _fixed(rh.ravel(), ">f4"), _fixed(door.ravel() > 0.5, ">u1"),
            _fixed(battery.ravel(), ">f4"),
        ])  # fmt: skip
        with self.conn.cursor() as cur, cur.copy(COPY_TEMPERATURES + " (FORMAT BINARY)") as copy:
            copy.write(rows)
        out: list[Observation] = []
        make = self.temp_reading
        table = values.tolist()
        for i, k in enumerate(steps):
            us = int(times[i])
            ts, t = _dt(us), us / 1e6
            for j, (c, h, d, b) in enumerate(table[i]):
                reading = make({"ts": ts, "seq": k, "temp_c": c, "rh_pct": h, "door_open": d > 0.5, "battery_v": b})
                out.append(Observation("temp", devices[j], reading, t, t))
        self._remember("temp", devices, out[-rooms:], received[-1])
        self.counts["temp"] += len(out)
        return out

    def _remember(
        self, kind: str, devices: list[str], last: list[Observation], received: npt.NDArray[np.int64]
    ) -> None:
        """The latest reading of each device, for device_latest at the end."""
        for device, obs, recv in zip(devices, last, received.tolist(), strict=True):
            reading = obs.reading
            self.latest[device] = (kind, reading.ts, reading.seq, _dt(recv), reading)

    # ------------------------------------------------------------ gates and release notes
    def _gate_bursts(self, passages: list[GatePassage]) -> None:
        """Reads for the fleet's passages, release notes for the outbound ones (and what goes wrong with them)."""
        p = self.prefix
        fresh: list[_Burst] = []
        notes: list[tuple[ReleaseNote, datetime]] = []
        for passage in passages:
            vehicle = p + passage.vehicle_id
            vehicle_epc = prefixed_epc(passage.vehicle_epc, p)
            cargo = [prefixed_epc(e, p) for e in passage.cargo_epcs]
            t0 = passage.ts.timestamp()
            fresh.append(self._burst(passage.gate_id, passage.direction, vehicle_epc, cargo, t0))
            if passage.direction != "out":
                continue
            rng = self.rng_notes
            draw = rng.random()
            problem = "no_note" if draw < NO_NOTE_P else "not_on_note" if draw < NO_NOTE_P + NOT_ON_NOTE_P else None
            if problem == "not_on_note" and len(cargo) < 2:
                problem = None
            issued = t0 - rng.uniform(*NOTE_ISSUED_BEFORE_S)
            first: ReleaseNote | None = None
            if problem != "no_note":
                listed = list(cargo)
                if problem == "not_on_note":
                    listed.remove(rng.choice(cargo))
                first = self._note(vehicle, listed, issued, issued + NOTE_VALID_S, notes)
            if problem is None:
                continue
            if rng.random() < AMENDED_P:
                amended = t0 + rng.uniform(*AMEND_AFTER_S)
                if first is not None:
                    first.valid_until = amended  # replaced by the amended note
                self._note(vehicle, cargo, amended, amended + NOTE_VALID_S, notes)
                again = t0 + rng.uniform(*REREAD_AFTER_S)
                fresh.append(self._burst(passage.gate_id, "out", vehicle_epc, cargo, again))
            elif first is not None:
                first.valid_until = t0 + REREAD_AFTER_S[1]  # customs close the note with the manual release
        self._avoid_taken_ids(fresh)
        self.bursts += fresh
        if notes:
            with self.conn.cursor() as cur:
                with cur.copy(
                    "COPY history_notes (id, vehicle_id, epcs, valid_from, valid_until, created_by, created_at) "
                    "FROM STDIN"
                ) as copy:
                    for note, created in notes:
                        copy.write_row((note.id, note.vehicle_id, sorted(note.epcs), datetime.fromtimestamp(
                            note.valid_from, UTC), datetime.fromtimestamp(note.valid_until, UTC), _shift_of(created),
                            created))  # fmt: skip
                cur.execute(NOTES_SQL)

    def _note(
        self,
        vehicle: str,
        epcs: list[str],
        valid_from: float,
        valid_until: float,
        notes: list[tuple[ReleaseNote, datetime]],
    ) -> ReleaseNote:
        """A note issued at ``valid_from``; its number is customs district, issue time and truck, so unique."""
        issued = datetime.fromtimestamp(valid_from, ZONE)
        note_id = f"{self.prefix}HF0716{issued:%Y%m%d%H%M%S}{vehicle.rsplit('-', 1)[-1]}"
        note = ReleaseNote(note_id, vehicle, frozenset(epcs), valid_from, valid_until, None)
        self.registry.notes[note_id] = note
        notes.append((note, issued))
        return note

    def _burst(self, gate: str, direction: str, vehicle_epc: str, cargo: list[str], t0: float) -> _Burst:
        rng = self.rng_rfid
        reads: list[tuple[int, int, str, float]] = []
        base_ms = round(t0 * 1000) + self.read_offset_ms
        for round_s in READ_ROUNDS_S:
            for i, epc in enumerate([vehicle_epc, *cargo]):
                if rng.random() >= (VEHICLE_TAG_READ_P if i == 0 else CARGO_TAG_READ_P):
                    continue
                at = base_ms + round((round_s + rng.uniform(-READ_JITTER_S, READ_JITTER_S)) * 1000)
                rssi = rng.gauss(-48.0, 2.5) if i == 0 else rng.gauss(-62.0, 5.0)
                reads.append((at, next(self.read_order), epc, round(min(-30.0, max(-90.0, rssi)), 1)))
        reads.sort()
        return _Burst(self.readers[gate], gate, direction, reads)

    def _avoid_taken_ids(self, bursts: list[_Burst]) -> None:
        """Move a burst by a millisecond while its passage id is taken (another history read at that instant)."""
        pending = [b for b in bursts if b.reads]
        for _ in range(10):
            if not pending:
                return
            ids = {passage_id(b.gate_id, b.reads[0][0] / 1000): b for b in pending}
            taken = {r[0] for r in self.conn.execute("SELECT id FROM gate_passages WHERE id = ANY(%s)", (list(ids),))}
            pending = [ids[i] for i in taken]
            for b in pending:
                b.reads = [(at + 1, order, epc, rssi) for at, order, epc, rssi in b.reads]

    def _gate_reads(self, cut_ms: int) -> list[Observation]:
        """Every read up to ``cut_ms`` (no passage still to come reads earlier), written and observed."""
        taken: list[tuple[int, int, str, float, _Burst]] = []
        keep: list[_Burst] = []
        for burst in self.bursts:
            mine = [r for r in burst.reads if r[0] <= cut_ms]
            if mine and not burst.scheduled:
                burst.scheduled = True
                close = mine[0][0] / 1000 + self.settings.rules_passage_window_s + CLOSE_AFTER_S
                heapq.heappush(self.closing, close)
            taken += [(*read, burst) for read in mine]
            burst.reads = burst.reads[len(mine) :]
            if burst.reads:
                keep.append(burst)
        self.bursts = keep
        taken = [r for r in taken if r[0] * 1000 < self.gps.end]
        taken.sort(key=lambda r: r[:2])  # by time, then as generated: the same order whatever the prefix
        if not taken:
            return []
        at_ms = np.array([r[0] for r in taken], dtype=np.int64)
        received = at_ms * 1000 + self._delays((len(taken), 1), RFID_DELAY)[:, 0]
        readers = list(self.readers.values())
        reader_index = {reader: i for i, reader in enumerate(readers)}
        seqs = []
        for *_, burst in taken:
            seqs.append(self.rfid_seq[burst.reader])
            self.rfid_seq[burst.reader] += 1
        epcs, epc_index = np.unique(np.array([r[2] for r in taken]), return_inverse=True)
        gates = list(GATES)
        rows = _binary_rows([
            _timestamps(at_ms * 1000), _text([reader_index[r[4].reader] for r in taken], readers),
            _fixed(seqs, ">i8"), _timestamps(received), _text(epc_index, epcs.tolist()),
            _fixed([1 if r[4].direction == "in" else 2 for r in taken], ">i4"), _fixed([r[3] for r in taken], ">f4"),
            _text([gates.index(r[4].gate_id) for r in taken], gates),
            _text([r[4].direction == "out" for r in taken], ("in", "out")),
        ])  # fmt: skip
        with self.conn.cursor() as cur, cur.copy(COPY_RFID + " (FORMAT BINARY)") as copy:
            copy.write(rows)
        out: list[Observation] = []
        make = self.rfid_reading
        for (at, _, epc, rssi, burst), seq, recv in zip(taken, seqs, received.tolist(), strict=True):
            ts = _dt(at * 1000)
            reading = make({"ts": ts, "seq": seq, "epc": epc, "antenna": 1 if burst.direction == "in" else 2,
                            "rssi_dbm": rssi, "gate_id": burst.gate_id, "direction": burst.direction})  # fmt: skip
            out.append(Observation("rfid", burst.reader, reading, at / 1000, at / 1000))
            self.latest[burst.reader] = ("rfid", ts, seq, _dt(recv), reading)
        self.counts["rfid"] += len(out)
        return out

    # ------------------------------------------------------------ the engine
    def _judge(self, observations: list[Observation], ticks: list[float]) -> list[Observation]:
        """Readings in time order through the engine, ticking its clock; what lies past the last tick is left."""
        assert self.engine is not None
        i = 0
        # Pipelined: the store's inserts go out without waiting for each answer.
        with self.conn.pipeline():
            for now in ticks:
                self._dispatch(now)
                j = i
                while j < len(observations) and observations[j].t <= now:
                    j += 1
                fx = self.engine.process(observations[i:j]) if j > i else Effects()
                i = j
                fx.extend(self.engine.tick(now))
                if fx:
                    self._apply(fx, now)
        return observations[i:]

    def _apply(self, fx: Effects, now: float) -> None:
        self.db.apply(fx)
        for p in fx.passages:
            self.decided.append((p.id, now))
        self.counts["passages"] += len(fx.passages)
        for change in fx.alerts:
            key = (change.type, change.subject_id)
            when = change.when.timestamp()
            alert_id = self.open_alerts.get(key)
            if change.action == "open" and alert_id is None:
                row = self.conn.execute(OPENED_SQL, (change.type, change.subject_id, change.when)).fetchone()
                if row is None:  # an alert of this subject was open already, not of this history: left alone
                    continue
                alert_id = row[0]
                self.open_alerts[key] = alert_id
                self.alert_ids.append(alert_id)
                self.alert_info[alert_id] = (change.type, change.severity, change.details)
                self._schedule_first(alert_id, change.type, change.severity, when)
                self.engine_events.append((alert_id, "opened", when))
                self.touched[alert_id] = max(self.touched.get(alert_id, when), when)
                continue
            if alert_id is None:
                continue
            if change.action == "clear":
                del self.open_alerts[key]
                self.engine_events.append((alert_id, "cleared", now))
            self.touched[alert_id] = max(self.touched.get(alert_id, now), now)

    # ------------------------------------------------------------ dispatchers
    def _push(self, at: float, kind: str, alert_id: int) -> None:
        if at < self.end_s:
            heapq.heappush(self.actions, _Action(at, next(self.action_order), kind, alert_id))

    def _schedule_first(self, alert_id: int, alert_type: str, severity: str, opened: float) -> None:
        rng = self.rng_dispatch
        if severity == "critical":
            self._push(opened + self.settings.rules_escalate_after_s, "escalate", alert_id)
        if alert_type not in RESOLVE_MEDIAN_S and rng.random() < MISSED_P:
            return
        self._push(opened + self._delay(ACK_MEDIAN_S[severity], opened), "ack", alert_id)

    def _delay(self, median: float, at: float) -> float:
        seconds = self.rng_dispatch.lognormvariate(math.log(median), ACK_SIGMA)
        if datetime.fromtimestamp(at, ZONE).hour < 7:
            seconds *= NIGHT_SLOWER
        return max(15.0, seconds)

    def _dispatch(self, until: float) -> None:
        """The dispatcher work due by ``until``, in order."""
        while self.actions and self.actions[0].at <= min(until, self.end_s):
            action = heapq.heappop(self.actions)
            alert_type, _, details = self.alert_info[action.alert_id]
            at = datetime.fromtimestamp(action.at, UTC)
            published = at + timedelta(seconds=self.rng_dispatch.uniform(*PUBLISH_DELAY_S))
            params = {"id": action.alert_id, "at": at, "site": self.site, "published": published}
            if action.kind == "escalate":
                if self.conn.execute(ESCALATE_SQL, {**params, "who": ACTOR}).fetchone():
                    self._push(action.at + self.settings.rules_escalate_after_s, "escalate", action.alert_id)
                continue
            if action.kind == "ack":
                note = ACK_NOTES.get(alert_type)
                acked = self.conn.execute(ACK_SQL, {**params, "who": _shift_of(at), "note": note}).fetchone()
                if acked and alert_type in RESOLVE_MEDIAN_S:
                    resolve_at = action.at + self._delay(RESOLVE_MEDIAN_S[alert_type], action.at)
                    self._push(resolve_at, "resolve", action.alert_id)
                continue
            if alert_type == "gate_hold":
                who, note = CUSTOMS_OFFICER, RESOLVE_HOLD
            else:
                corner = details.get("crossed_between_fixes_m") and not details.get("distance_outside_m")
                who, note = _shift_of(at), RESOLVE_CORNER if corner else RESOLVE_RETURNED
            if self.conn.execute(RESOLVE_SQL, {**params, "who": who, "note": note}).fetchone():
                # The rule's later changes of this episode find it cleared, as they would after POST /resolve.
                self.open_alerts = {k: v for k, v in self.open_alerts.items() if v != action.alert_id}

    # ------------------------------------------------------------ database clock to simulated time
    def _fix_up(self) -> None:
        low, high = PUBLISH_DELAY_S
        with self.conn.cursor() as cur:
            if self.engine_events:
                alerts, events, times = zip(*self.engine_events, strict=True)
                at = [datetime.fromtimestamp(t, UTC) for t in times]
                cur.execute(ENGINE_EVENTS_SQL, (low, (high - low) / 25, list(alerts), list(events), at, ACTOR))
                self.engine_events = []
            if self.touched:
                at = [datetime.fromtimestamp(t, UTC) for t in self.touched.values()]
                cur.execute(UPDATED_SQL, (list(self.touched), at))
                self.touched = {}
            if self.decided:
                passages = [pid for pid, _ in self.decided]
                cur.execute(DECIDED_SQL, (low, passages, [datetime.fromtimestamp(t, UTC) for _, t in self.decided]))
                cur.execute(USED_SQL, (passages,))
                self.decided = []


# ---------------------------------------------------------------- console


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """A month of gate decisions and alerts is in the tables and the summary, not on the console."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def _survivors_frozen() -> Iterator[Callable[[], None]]:
    """Keep what outlived a chunk (registry, tags, engine state: a heap that only grows) out of the collector's
    full passes, which would otherwise rescan it ever more slowly; handed back at the end. Left alone when the
    caller freezes objects of its own."""
    if gc.get_freeze_count():
        yield lambda: None
        return
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


@contextmanager
def _progress_bar(show: bool, chunks: int) -> Iterator[Callable[[datetime], None]]:
    if not show:
        yield lambda at: None
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("历史数据 history", total=chunks)

        def advance(at: datetime) -> None:
            bar.update(task, advance=1, description=f"历史数据 history {at.astimezone(ZONE):%Y-%m-%d %H:%M}")

        yield advance
