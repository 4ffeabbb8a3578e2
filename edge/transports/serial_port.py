"""A serial port as a stream of byte chunks, reopened when the device goes away (USB unplug, power)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import serial

from edge.errors import DeviceError

log = logging.getLogger(__name__)


class SerialSource:
    def __init__(self, port: str, baudrate: int = 9600, read_timeout_s: float = 0.2, device: str | None = None):
        self.port = port
        self.baudrate = baudrate
        self.read_timeout_s = read_timeout_s
        self.device = device

    def chunks(self, stop: threading.Event, reopen_after_s: float = 2.0) -> Iterator[bytes | DeviceError]:
        """Bytes as they arrive (b"" when idle); a DeviceError item each time the port fails (then it is reopened)."""
        while not stop.is_set():
            try:
                with serial.Serial(self.port, self.baudrate, timeout=self.read_timeout_s) as port:
                    log.info("%s: reading %s at %d baud", self.device, self.port, self.baudrate)
                    while not stop.is_set():
                        # b"" on an idle read timeout lets the driver do timed work (smoothing windows)
                        yield port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                yield DeviceError("port", f"serial port {self.port}: {exc}", self.device)
                stop.wait(reopen_after_s)
