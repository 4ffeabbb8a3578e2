"""gpsd's JSON stream (TPV, SKY) over TCP, for receivers gpsd already manages."""

from __future__ import annotations

from datetime import datetime

from edge.drivers.base import DriverOptions
from edge.drivers.stream import Framer, Source, StreamDriver
from edge.protocols.gpsd import GpsdDecoder, GpsdFramer
from edge.readings import Reading
from edge.transports.tcp import TcpSource

WATCH = b'?WATCH={"enable":true,"json":true};\n'


class GpsdOptions(DriverOptions):
    host: str = "127.0.0.1"
    port: int = 2947
    max_skew_s: float | None = 300.0  # as nmea_serial


class GpsdDriver(StreamDriver):
    name = "gpsd"
    Options = GpsdOptions
    options: GpsdOptions

    def setup(self) -> None:
        self._decoder = GpsdDecoder(device=self.device_id)

    def source(self) -> Source:
        return TcpSource(self.options.host, self.options.port, hello=WATCH, device=self.device_id)

    def framer(self) -> Framer:
        return GpsdFramer(on_error=self.reject, device=self.device_id)

    def decode(self, unit: str | bytes, now: datetime) -> list[Reading]:
        return self.on_time(list(self._decoder.decode(str(unit))), now, self.options.max_skew_s)
