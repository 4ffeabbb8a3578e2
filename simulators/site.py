"""`bondwatch simulate site`: the whole bonded zone as devices on serial lines, read by edge agents.

    fleet model  --> 1 GNSS terminal (NMEA on a pty) per truck --> edge agent "gw-fleet"
    cold rooms   --> Modbus RTU sensors, 4 per RS-485 bus (pty) --> edge agent "gw-coldstore"
    gate passages--> a UHF reader (serial RFID on a pty) per gate --> edge agent "gw-<gate>"

The models advance in real time; each device speaks its real wire protocol, so everything from
the serial bytes on is the production code path. The registry (geofences, profiles, devices,
vehicles, tags) can be seeded through the API, so the platform knows what it is looking at.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bondwatch.settings import CommonSettings
from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from edge.protocols.modbus_map import Point
from edge.readings import Position, Temperature
from simulators.coldrooms import ColdStore
from simulators.devices.gnss_terminal import GnssTerminal
from simulators.devices.modbus_sensor import ModbusSensorSimulator, image_from_values
from simulators.devices.rfid_reader import RfidReader
from simulators.fleet import Fleet
from simulators.geography import GATES, geofence_features

log = logging.getLogger(__name__)

ROOMS_PER_BUS = 4
PORTAL_S = 4.0  # a truck stands this long in front of the gate reader
SENSOR_POINTS = [
    {"name": "temp_c", "function": 4, "address": 1, "type": "int16", "scale": 0.1},
    {"name": "rh_pct", "function": 4, "address": 2, "type": "uint16", "scale": 0.1},
    {"name": "battery_v", "function": 4, "address": 3, "type": "uint16", "scale": 0.01},
    {"name": "door_open", "function": 2, "address": 0},
]
POINTS = [Point.model_validate(p) for p in SENSOR_POINTS]


class VirtualSite:
    def __init__(self, settings: CommonSettings, workdir: Path, seed: int = 716, trucks: int = 24) -> None:
        self.settings = settings
        self.workdir = workdir
        self.fleet = Fleet(seed, n=trucks)
        self.store = ColdStore(seed)
        now = datetime.now(UTC)
        self._positions: dict[str, Position] = dict(self.fleet.positions(now))
        self._temps: dict[str, Temperature] = dict(self.store.readings(now))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.terminals = {vid: GnssTerminal(self._fix_of(vid)) for vid in self._positions}
        rooms = [room.device_id for room in self.store.rooms]
        self.buses = [
            (bus_rooms, ModbusSensorSimulator({i + 1: self._image_of(room) for i, room in enumerate(bus_rooms)}))
            for bus_rooms in (rooms[i : i + ROOMS_PER_BUS] for i in range(0, len(rooms), ROOMS_PER_BUS))
        ]
        self.readers = {gate_id: RfidReader() for gate_id in GATES}
        self._portal: list[tuple[datetime, str, str]] = []  # (leave at, gate, epc)
        self.agents: list[EdgeAgent] = []

    # device callbacks, called from the device threads
    def _fix_of(self, vehicle_id: str) -> Callable[[datetime], Position | None]:
        def fix(now: datetime) -> Position | None:
            with self._lock:
                position = self._positions.get(vehicle_id)
            return None if position is None else _restamp(position, now)

        return fix

    def _image_of(self, device_id: str) -> Callable[[], dict[int, dict[int, int | bool]]]:
        def image() -> dict[int, dict[int, int | bool]]:
            with self._lock:
                t = self._temps[device_id]
            values: dict[str, float | bool] = {
                "temp_c": t.temp_c,
                "rh_pct": t.rh_pct or 0.0,
                "battery_v": t.battery_v or 0.0,
                "door_open": bool(t.door_open),
            }
            return image_from_values(POINTS, values)

        return image

    def _model_loop(self) -> None:
        last = datetime.now(UTC)
        while not self._stop.wait(1.0):
            now = datetime.now(UTC)
            dt = (now - last).total_seconds()
            last = now
            self.fleet.step(now, dt)
            self.store.step(now, dt)
            with self._lock:
                self._positions = dict(self.fleet.positions(now))
                self._temps = dict(self.store.readings(now))
            for passage in self.fleet.gate_passages(now):
                reader = self.readers[passage.gate_id]
                antenna = 1 if passage.direction == "in" else 2
                for epc in (passage.vehicle_epc, *passage.cargo_epcs):
                    reader.present(epc, antenna, -50.0)
                    self._portal.append((now + timedelta(seconds=PORTAL_S), passage.gate_id, epc))
            for _, gate_id, epc in [p for p in self._portal if p[0] <= now]:
                self.readers[gate_id].remove(epc)
            self._portal = [p for p in self._portal if p[0] > now]

    def edge_configs(self) -> list[EdgeConfig]:
        queues = self.workdir / "edge"
        queues.mkdir(parents=True, exist_ok=True)
        fleet = {
            "agent": {"gateway_id": "gw-fleet", "queue_path": queues / "gw-fleet.db"},
            "devices": [{"id": vid, "driver": "nmea_serial", "port": t.path} for vid, t in self.terminals.items()],
        }
        coldstore = {
            "agent": {"gateway_id": "gw-coldstore", "queue_path": queues / "gw-coldstore.db"},
            "devices": [
                {
                    "id": f"rs485-coldstore-{n}",
                    "driver": "modbus_rtu",
                    "port": bus.path,
                    "poll_s": 10,
                    "timeout_s": 0.3,
                    "sensors": [
                        {"device_id": room, "slave": i + 1, "points": SENSOR_POINTS} for i, room in enumerate(rooms)
                    ],
                }
                for n, (rooms, bus) in enumerate(self.buses, 1)
            ],
        }
        gates = [
            {
                "agent": {"gateway_id": f"gw-{gate_id}", "queue_path": queues / f"gw-{gate_id}.db"},
                "devices": [
                    {
                        "id": f"rdr-{gate_id}",
                        "driver": "rfid_serial",
                        "port": reader.path,
                        "gate_id": gate_id,
                        "antenna_directions": {1: "in", 2: "out"},
                        "window_s": 3.0,
                    }
                ],
            }
            for gate_id, reader in self.readers.items()
        ]
        return [EdgeConfig.model_validate(c) for c in (fleet, coldstore, *gates)]

    def inject(self, fault: Fault, now: datetime) -> None:
        """Apply one fault now; the target must exist."""
        if fault.target in self.terminals:
            terminal = self.terminals[fault.target]
            actions: dict[str, Callable[[], None]] = {
                "gps_jump": lambda: self.fleet.inject_gps_jump(fault.target, 25.0),
                "bad_checksum": lambda: terminal.corrupt_next(20),
                "repeat": lambda: terminal.repeat_next(20),
                "clock_skew": lambda: setattr(terminal, "clock_skew", timedelta(hours=3)),
                "silent": lambda: terminal.go_silent(600),
            }
        else:
            room = self.store.room(fault.target)
            bus, slave = next((bus, rooms.index(room.device_id) + 1) for rooms, bus in self.buses
                              if room.device_id in rooms)  # fmt: skip
            actions = {
                "crc": lambda: bus.corrupt_crc(10, slave),
                "modbus_exception": lambda: bus.exception(n=10, slave=slave),
                "silent": lambda: bus.silence(1000, slave),
                "compressor": lambda: self.store.fail_compressor(fault.target, now),
            }
        if fault.kind not in actions:
            raise ValueError(f"fault {fault.kind!r} does not apply to {fault.target!r}")
        log.warning("fault injected: %s on %s", fault.kind, fault.target)
        actions[fault.kind]()

    def _devices(self) -> list[GnssTerminal | ModbusSensorSimulator | RfidReader]:
        return [*self.terminals.values(), *(bus for _, bus in self.buses), *self.readers.values()]

    def start(self) -> None:
        for device in self._devices():
            device.start()
        threading.Thread(target=self._model_loop, name="site-model", daemon=True).start()
        self.agents = [EdgeAgent(config, self.settings) for config in self.edge_configs()]
        for agent in self.agents:
            agent.start()
        log.info(
            "virtual site: %d trucks, %d cold rooms on %d buses, %d gate readers, %d edge agents",
            len(self.terminals),
            len(self.store.rooms),
            len(self.buses),
            len(self.readers),
            len(self.agents),
        )

    def stop(self) -> None:
        self._stop.set()
        for agent in self.agents:
            agent.stop()
        for device in self._devices():
            device.stop()

    def registry(self) -> list[tuple[str, dict[str, Any]]]:
        """(path, body) of every PUT that describes this site to the platform, in dependency order."""
        return site_registry(self.fleet, self.store, self.readers)

    def seed_registry(self, api: httpx.Client) -> int:
        """PUT the registry through the API (``api``: base URL .../api/v1 with an admin token)."""
        records = self.registry()
        for path, body in records:
            response = api.put(path, json=body)
            if response.status_code >= 300:
                raise RuntimeError(f"PUT {path}: {response.status_code} {response.text}")
        return len(records)

    def seed_tags(self, api: httpx.Client) -> int:
        """Tags exist once the fleet has loaded cargo; called again as trips go on."""
        tags = self.fleet.tags()
        for epc, body in tags.items():
            api.put(f"/tags/{epc}", json=body).raise_for_status()
        return len(tags)


def site_registry(fleet: Fleet, store: ColdStore, gate_ids: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of every API PUT that describes the site's models to the platform, in dependency order.

    Geofences, the rooms' profiles and sensors, the trucks' terminals and vehicles, a reader per gate (device
    ``rdr-<gate>``). Tags follow as the fleet issues them (:meth:`simulators.fleet.Fleet.tags`).
    """
    out: list[tuple[str, dict[str, Any]]] = []
    out += [(f"/geofences/{f['id']}", f) for f in geofence_features()]
    for room in store.rooms:
        out.append((f"/profiles/{room.profile_name}", room.profile()))
    for room in store.rooms:
        out.append((f"/devices/{room.device_id}", room.device_record()))
    for truck in fleet.trucks:
        out.append((f"/devices/{truck.device_id}", {"kind": "gps", "name": truck.name, "vehicle_id": truck.vehicle_id}))
        out.append((f"/vehicles/{truck.vehicle_id}", truck.vehicle_record()))
    for gate_id in gate_ids:
        out.append((f"/devices/rdr-{gate_id}", {"kind": "rfid", "name": f"gate reader {gate_id}", "gate_id": gate_id}))
    return out


FAULT_KINDS = ("gps_jump", "bad_checksum", "repeat", "clock_skew", "silent", "crc", "modbus_exception", "compressor")


@dataclass(frozen=True)
class Fault:
    """``KIND:TARGET@SECONDS``, e.g. ``gps_jump:trk-03@60`` or ``compressor:cr-01@120``.

    gps_jump, bad_checksum, repeat, clock_skew, silent: a truck's terminal (vehicle id);
    crc, modbus_exception, silent: a cold room's sensor (room id) on its bus;
    compressor: a cold room's refrigeration fails (a real excursion follows).
    """

    kind: str
    target: str
    at_s: float

    @classmethod
    def parse(cls, text: str) -> Fault:
        try:
            kind, rest = text.split(":", 1)
            target, at = rest.rsplit("@", 1)
            fault = cls(kind, target, float(at))
        except ValueError:
            raise ValueError(f"fault {text!r} is not KIND:TARGET@SECONDS") from None
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        return fault


def _restamp(position: Position, now: datetime) -> Position:
    return dataclasses.replace(position, ts=now)


def run_site(
    settings: CommonSettings, workdir: Path, seed: int, trucks: int, seed_registry: bool, faults: list[Fault]
) -> None:
    site = VirtualSite(settings, workdir, seed, trucks)
    for fault in faults:  # fail before starting anything when a target is unknown
        if fault.target not in site.terminals:
            site.store.room(fault.target)
    api: httpx.Client | None = None
    if seed_registry:
        from simulators.registry_client import admin_client

        api = admin_client(settings, "simulate site")
        log.info("registry: %d records seeded", site.seed_registry(api))
    site.start()
    started = time.monotonic()
    pending = sorted(faults, key=lambda f: f.at_s)
    last_tags = started
    stop = threading.Event()
    try:
        while not stop.wait(1.0):
            while pending and time.monotonic() - started >= pending[0].at_s:
                site.inject(pending.pop(0), datetime.now(UTC))
            if api is not None and time.monotonic() - last_tags > 30:
                site.seed_tags(api)
                last_tags = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
        if api is not None:
            api.close()
