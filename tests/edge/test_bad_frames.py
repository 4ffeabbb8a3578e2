"""Every kind of bad frame the simulators can inject is counted by the edge agent and never stored as a reading.

Bad NMEA checksums, fixes without a fix, a skewed receiver clock and repeated sentences; Modbus CRC
errors, timeouts (a silent sensor) and exception responses; gate-reader lines with a bad checksum.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bondwatch.settings import CommonSettings
from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from edge.readings import Position
from ingest.service import IngestService
from simulators.devices.gnss_terminal import GnssTerminal
from simulators.devices.modbus_sensor import ModbusSensorSimulator, image_from_values
from simulators.devices.rfid_reader import RfidReader
from simulators.site import POINTS, SENSOR_POINTS
from tests.conftest import wait_for

EPC = "3034257BF7194E4000001A85"


def test_bad_frames_are_counted_and_never_stored(
    site: str, ingest: IngestService, db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    fix_state = {"fix": "3d"}

    def fix(now: datetime) -> Position:
        return Position(now, 39.5, 109.8, fix_state["fix"], speed_kmh=20.0, sats=10, hdop=1.0)  # type: ignore[arg-type]

    gnss = GnssTerminal(fix, period_s=0.5).start()
    values: dict[str, float | bool] = {"temp_c": 3.0, "rh_pct": 80.0, "battery_v": 3.6, "door_open": False}
    sensor = ModbusSensorSimulator({1: lambda: image_from_values(POINTS, values)}).start()
    reader = RfidReader(period_s=0.2).start()
    reader.present(EPC, 1, -50.0)
    config = EdgeConfig.model_validate({
        "agent": {"gateway_id": f"{site}-gw", "queue_path": tmp_path / "q.db"},
        "devices": [
            {"id": f"{site}-trk", "driver": "nmea_serial", "port": gnss.path},
            {"id": f"{site}-bus", "driver": "modbus_rtu", "port": sensor.path, "poll_s": 0.3, "timeout_s": 0.2,
             "retries": 0, "sensors": [{"device_id": f"{site}-room", "slave": 1, "points": SENSOR_POINTS}]},
            {"id": f"{site}-rdr", "driver": "rfid_serial", "port": reader.path, "gate_id": "gate-n1",
             "direction": "in", "window_s": 0.5},
        ],
    })  # fmt: skip
    agent = EdgeAgent(config, CommonSettings(site=site))
    agent.start()
    nmea, modbus, rfid = agent.drivers
    try:
        time.sleep(1.5)
        gnss.corrupt_next(4)
        gnss.repeat_next(4)
        sensor.corrupt_crc(2)
        sensor.exception(n=1)
        sensor.silence(2)
        reader.corrupt_next(3)
        time.sleep(2)
        fix_state["fix"] = "none"  # RMC status V, GGA quality 0
        time.sleep(1.5)
        fix_state["fix"] = "3d"
        gnss.clock_skew = timedelta(hours=6)
        time.sleep(1.5)
        gnss.clock_skew = timedelta(0)
        time.sleep(1.5)
        wait_for(lambda: agent.queue.depth() == 0, timeout=20)
    finally:
        agent.stop()
        for device in (gnss, sensor, reader):
            device.stop()

    assert nmea.rejected["bad_checksum"] >= 3
    assert nmea.rejected["no_fix"] >= 1
    assert nmea.rejected["clock_skew"] >= 1
    assert modbus.rejected["crc"] >= 1 and modbus.rejected["exception_response"] >= 1
    assert modbus.rejected["timeout"] >= 1
    assert rfid.rejected["bad_checksum"] >= 1

    def count(sql: str) -> int:
        return int(db.execute(sql, (f"{site}-%",)).fetchone()[0])  # type: ignore[index]

    wait_for(lambda: count("SELECT count(*) FROM positions WHERE device_id LIKE %s") == nmea.readings, timeout=20)
    # nothing but good fixes: no skewed time, no fix-less position, no repeat of an epoch
    assert count("SELECT count(*) FROM positions WHERE device_id LIKE %s AND abs(extract(epoch FROM ts - "
                 "received_at)) > 300") == 0  # fmt: skip
    assert count("SELECT count(*) FROM positions WHERE device_id LIKE %s AND fix <> '3d'") == 0
    assert count("SELECT count(*) - count(DISTINCT ts) FROM positions WHERE device_id LIKE %s") == 0
    wait_for(lambda: count("SELECT count(*) FROM temperatures WHERE device_id LIKE %s") == modbus.readings, timeout=20)
    assert count("SELECT count(*) FROM temperatures WHERE device_id LIKE %s AND temp_c <> 3.0") == 0
    assert count("SELECT count(*) FROM rfid_reads WHERE device_id LIKE %s AND epc <> '" + EPC + "'") == 0
