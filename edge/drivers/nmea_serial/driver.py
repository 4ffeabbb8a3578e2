"""GNSS receiver or truck terminal on a serial port speaking NMEA 0183 (GP/GL/GA/GB/BD/GN talkers)."""

from __future__ import annotations

from datetime import datetime

from edge.drivers.base import DriverOptions
from edge.drivers.stream import Framer, Source, StreamDriver
from edge.protocols.nmea import NmeaDecoder, NmeaFramer
from edge.readings import Reading
from edge.transports.serial_port import SerialSource


class NmeaSerialOptions(DriverOptions):
    port: str
    baudrate: int = 9600
    # A fix further than this from the gateway's clock is refused (clock_skew); none: accept all.
    max_skew_s: float | None = 300.0


class NmeaSerialDriver(StreamDriver):
    name = "nmea_serial"
    Options = NmeaSerialOptions
    options: NmeaSerialOptions

    def setup(self) -> None:
        self._decoder = NmeaDecoder(device=self.device_id)

    def source(self) -> Source:
        return SerialSource(self.options.port, self.options.baudrate, device=self.device_id)

    def framer(self) -> Framer:
        return NmeaFramer(on_error=self.reject, device=self.device_id)

    def decode(self, unit: str | bytes, now: datetime) -> list[Reading]:
        return self.on_time(list(self._decoder.decode(str(unit))), now, self.options.max_skew_s)
