"""A simple UHF gate reader on a serial line, speaking edge/protocols/rfid_serial.py's protocol.

Tags "in the field" are given as (epc, antenna, rssi_dbm); the reader reports each of them at
every tick, as real readers do while a tag sits in front of an antenna, plus a heartbeat.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

from edge.protocols.rfid_serial import encode_heartbeat_line, encode_tag_line
from simulators.devices.serial_device import SerialDevice


class RfidReader(SerialDevice):
    def __init__(self, period_s: float = 0.2, link: Path | str | None = None) -> None:
        super().__init__(period_s, link)
        self._field: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._ticks = 0

    def present(self, epc: str, antenna: int = 1, rssi_dbm: float = -55.0) -> None:
        with self._lock:
            self._field[epc] = (antenna, rssi_dbm)

    def remove(self, epc: str) -> None:
        with self._lock:
            self._field.pop(epc, None)

    def frames(self, now: datetime) -> list[bytes]:
        counter = int((time.monotonic() - self._t0) * 1000)
        self._ticks += 1
        with self._lock:
            out = [encode_tag_line(epc, ant, rssi, counter) for epc, (ant, rssi) in self._field.items()]
        if self._ticks % 25 == 1:
            out.append(encode_heartbeat_line(counter))
        return out
