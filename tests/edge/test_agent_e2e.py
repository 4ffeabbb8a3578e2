"""An edge agent reading simulated devices on pseudo-terminals publishes contract messages that ingest stores.

GNSS terminal (NMEA + $PBWEV), gate reader (serial RFID) and a Modbus RTU cold-room sensor, each on
its own pty and read through pyserial exactly as hardware would be; the broker and database are real.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bondwatch.settings import CommonSettings
from edge.agent import EdgeAgent
from edge.config import load_config
from edge.protocols.modbus_map import Point
from edge.readings import Position
from ingest.service import IngestService
from simulators.devices.gnss_terminal import GnssTerminal
from simulators.devices.modbus_sensor import ModbusSensorSimulator, image_from_values
from simulators.devices.rfid_reader import RfidReader
from tests.conftest import wait_for

VEHICLE_EPC = "3074257BF7194E4000001A85"
CARGO_EPC = "3034257BF7194E4000001A86"
POINTS = [
    Point(name="temp_c", function=4, address=1, type="int16", scale=0.1),
    Point(name="rh_pct", function=4, address=2, type="uint16", scale=0.1),
]


def truck(now: datetime) -> Position:
    t = now.timestamp() % 600
    return Position(now, 39.50 + t * 1e-5, 109.80, "3d", speed_kmh=36.0, heading_deg=0.0, hdop=0.8, sats=14,
                    soc_pct=76.5, energy_kwh=1520.25, odometer_km=40211.4)  # fmt: skip


def test_agent_reads_pty_devices_into_the_database(
    site: str, ingest: IngestService, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    gnss = GnssTerminal(truck).start()
    reader = RfidReader(period_s=0.1).start()
    reader.present(VEHICLE_EPC, antenna=2, rssi_dbm=-48.0)
    reader.present(CARGO_EPC, antenna=2, rssi_dbm=-61.0)
    sensor = ModbusSensorSimulator({1: lambda: image_from_values(POINTS, {"temp_c": 2.4, "rh_pct": 88.5})}).start()
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[agent]
gateway_id = "{site}-gw"
queue_path = "queue.db"

[[devices]]
id = "{site}-trk"
driver = "nmea_serial"
port = "{gnss.path}"

[[devices]]
id = "{site}-rdr"
driver = "rfid_serial"
port = "{reader.path}"
gate_id = "gate-n1"
antenna_directions = {{ 1 = "in", 2 = "out" }}
window_s = 1.0

[[devices]]
id = "{site}-bus"
driver = "modbus_rtu"
port = "{sensor.path}"
timeout_s = 0.3
poll_s = 0.5
sensors = [{{ device_id = "{site}-room", slave = 1, points = [
  {{ name = "temp_c", function = 4, address = 1, type = "int16", scale = 0.1 }},
  {{ name = "rh_pct", function = 4, address = 2, type = "uint16", scale = 0.1 }},
] }}]
""")
    gnss.corrupt_next(3)  # three sentences with a bad checksum: counted, never positions
    agent = EdgeAgent(load_config(config), CommonSettings(site=site))
    agent.start()
    try:

        def count(table: str, device: str) -> int:
            row = db.execute(f"SELECT count(*) FROM {table} WHERE device_id = %s", (device,)).fetchone()
            return int(row[0]) if row else 0

        wait_for(lambda: count("positions", f"{site}-trk") >= 3 and count("temperatures", f"{site}-room") >= 3
                 and count("rfid_reads", f"{site}-rdr") >= 2, timeout=30)  # fmt: skip
    finally:
        agent.stop()
        for device in (gnss, reader, sensor):
            device.stop()

    lat, soc, energy, fix = db.execute(
        "SELECT lat, soc_pct, energy_kwh, fix FROM positions WHERE device_id = %s ORDER BY ts DESC LIMIT 1",
        (f"{site}-trk",),
    ).fetchone()
    assert 39.5 <= lat < 39.52 and soc == pytest.approx(76.5) and energy == pytest.approx(1520.25) and fix == "3d"
    temp, rh = db.execute(
        "SELECT temp_c, rh_pct FROM temperatures WHERE device_id = %s LIMIT 1", (f"{site}-room",)
    ).fetchone()
    assert (temp, rh) == (pytest.approx(2.4), pytest.approx(88.5))
    reads = db.execute(
        "SELECT DISTINCT epc, gate_id, direction FROM rfid_reads WHERE device_id = %s", (f"{site}-rdr",)
    ).fetchall()
    assert set(reads) == {(VEHICLE_EPC, "gate-n1", "out"), (CARGO_EPC, "gate-n1", "out")}
    # smoothing: at 10 sightings/s and a 1 s window, far fewer reads than sightings
    n_reads = db.execute("SELECT count(*) FROM rfid_reads WHERE device_id = %s", (f"{site}-rdr",)).fetchone()[0]
    assert n_reads < reader.frames_written / 3
    rejected = agent.drivers[0].rejected
    assert rejected["bad_checksum"] >= 1
    seqs = db.execute("SELECT seq FROM positions WHERE device_id = %s ORDER BY seq", (f"{site}-trk",)).fetchall()
    assert [s for (s,) in seqs] == list(range(len(seqs)))  # edge-assigned, gap-free, from 0
