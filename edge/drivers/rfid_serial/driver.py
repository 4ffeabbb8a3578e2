"""Simple UHF gate reader on a serial port, line protocol of edge/protocols/rfid_serial.py."""

from __future__ import annotations

from datetime import datetime

from edge.drivers.rfid_gate import GateReaderDriver, GateReaderOptions
from edge.drivers.stream import Framer, Source
from edge.protocols.rfid_serial import SerialRfidDecoder, SerialRfidFramer
from edge.readings import Reading
from edge.transports.serial_port import SerialSource


class RfidSerialOptions(GateReaderOptions):
    port: str
    baudrate: int = 115200


class RfidSerialDriver(GateReaderDriver):
    name = "rfid_serial"
    Options = RfidSerialOptions
    options: RfidSerialOptions

    def setup(self) -> None:
        super().setup()
        self._decoder = SerialRfidDecoder(device=self.device_id)

    def source(self) -> Source:
        return SerialSource(self.options.port, self.options.baudrate, device=self.device_id)

    def framer(self) -> Framer:
        return SerialRfidFramer(on_error=self.reject, device=self.device_id)

    def decode(self, unit: str | bytes, now: datetime) -> list[Reading]:
        return self.sightings(self._decoder.decode(str(unit), now), now)
