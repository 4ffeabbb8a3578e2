"""What the rules know of the site: the registry tables, held in memory and reloaded when they change.

Every registry table has a trigger that NOTIFYs ``bondwatch_registry`` with its name (migration
0003), so whoever writes the registry, the engine reloads that table before its next batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bondwatch.geofence import GeofenceInvalid, parse_feature
from rules.fences import FenceSet

log = logging.getLogger(__name__)
TABLES = ("profiles", "devices", "vehicles", "tags", "geofences", "release_notes")
# Notes that ended this long ago cannot decide any passage the engine will still see.
NOTES_KEPT_S = 8 * 86_400


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    min_c: float
    max_c: float
    delay_s: float
    hysteresis_c: float
    pre_alarm_margin_c: float
    offline_after_s: float


@dataclass(frozen=True, slots=True)
class Device:
    device_id: str
    kind: str
    name: str
    vehicle_id: str | None
    gate_id: str | None
    profile: str | None


@dataclass(frozen=True, slots=True)
class Vehicle:
    vehicle_id: str
    name: str
    plate: str
    device_id: str | None
    bonded_transport: bool
    corridor_id: str | None
    tag_epc: str | None
    gps_lost_after_s: float
    low_soc_pct: float


@dataclass(frozen=True, slots=True)
class Tag:
    epc: str
    kind: str  # vehicle | cargo
    customs_status: str  # bonded | non_bonded
    vehicle_id: str | None
    description: str | None


@dataclass(slots=True)
class ReleaseNote:
    id: str
    vehicle_id: str
    epcs: frozenset[str]
    valid_from: float
    valid_until: float
    used_passage_id: str | None

    def usable(self, at: float, passage_id: str) -> bool:
        # The passage that used a note may use it again: a replay after a crash decides as before.
        return self.valid_from <= at <= self.valid_until and self.used_passage_id in (None, passage_id)


@dataclass
class Registry:
    profiles: dict[str, Profile] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    vehicles: dict[str, Vehicle] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    notes: dict[str, ReleaseNote] = field(default_factory=dict)
    fences: FenceSet = field(default_factory=FenceSet.empty)
    vehicle_by_device: dict[str, str] = field(default_factory=dict)
    vehicle_by_tag: dict[str, str] = field(default_factory=dict)

    def profile_of(self, device_id: str) -> Profile | None:
        device = self.devices.get(device_id)
        return self.profiles.get(device.profile) if device is not None and device.profile else None

    def vehicle_of(self, device_id: str) -> Vehicle | None:
        vid = self.vehicle_by_device.get(device_id)
        return self.vehicles.get(vid) if vid else None

    def notes_for(self, vehicle_id: str) -> list[ReleaseNote]:
        return [n for n in self.notes.values() if n.vehicle_id == vehicle_id]

    def _index(self) -> None:
        self.vehicle_by_device = {}
        for v in self.vehicles.values():
            if v.device_id:
                self.vehicle_by_device[v.device_id] = v.vehicle_id
        for d in self.devices.values():  # a device may name its vehicle instead
            if d.vehicle_id and d.vehicle_id in self.vehicles:
                self.vehicle_by_device.setdefault(d.device_id, d.vehicle_id)
        self.vehicle_by_tag = {v.tag_epc: v.vehicle_id for v in self.vehicles.values() if v.tag_epc}
        for t in self.tags.values():
            if t.kind == "vehicle" and t.vehicle_id in self.vehicles:
                self.vehicle_by_tag.setdefault(t.epc, t.vehicle_id)

    def reload(self, conn: psycopg.Connection[Any], tables: set[str], crs: str = "") -> None:
        """Read the named tables afresh (in one snapshot of the database)."""
        cur = conn.cursor(row_factory=dict_row)
        if "profiles" in tables:
            self.profiles = {
                r["name"]: Profile(**r)
                for r in cur.execute(
                    "SELECT name, min_c, max_c, delay_s, hysteresis_c, pre_alarm_margin_c, offline_after_s "
                    "FROM profiles"
                )
            }
        if "devices" in tables:
            self.devices = {
                r["device_id"]: Device(**r)
                for r in cur.execute("SELECT device_id, kind, name, vehicle_id, gate_id, profile FROM devices")
            }
        if "vehicles" in tables:
            self.vehicles = {
                r["vehicle_id"]: Vehicle(**r)
                for r in cur.execute(
                    "SELECT vehicle_id, name, plate, device_id, bonded_transport, corridor_id, tag_epc, "
                    "gps_lost_after_s, low_soc_pct FROM vehicles"
                )
            }
        if "tags" in tables:
            self.tags = {
                r["epc"]: Tag(**r)
                for r in cur.execute("SELECT epc, kind, customs_status, vehicle_id, description FROM tags")
            }
        if "release_notes" in tables:
            self.notes = {
                r["id"]: ReleaseNote(
                    r["id"],
                    r["vehicle_id"],
                    frozenset(r["epcs"]),
                    _epoch(r["valid_from"]),
                    _epoch(r["valid_until"]),
                    r["used_passage_id"],
                )
                for r in cur.execute(
                    "SELECT id, vehicle_id, epcs, valid_from, valid_until, used_passage_id FROM release_notes "
                    "WHERE valid_until > now() - make_interval(secs => %s)",
                    (NOTES_KEPT_S,),
                )
            }
        if "geofences" in tables:
            fences = []
            for r in cur.execute("SELECT id, feature FROM geofences ORDER BY id"):
                try:
                    fences.append(parse_feature(r["feature"], r["id"]))
                except GeofenceInvalid as exc:  # the API refuses these; a hand-written row may not be
                    log.error("geofence %s ignored: %s", r["id"], exc)
            self.fences = FenceSet(fences, crs)
        conn.commit()
        self._index()
        log.info(
            "registry reloaded (%s): %d devices, %d profiles, %d vehicles, %d tags, %d release notes, %d geofences",
            ", ".join(sorted(tables)),
            len(self.devices),
            len(self.profiles),
            len(self.vehicles),
            len(self.tags),
            len(self.notes),
            len(self.fences.ids),
        )


def _epoch(value: datetime) -> float:
    return value.timestamp()
