"""Fixed UHF reader over LLRP (TCP 5084), decoded with sllurp.

The reader is expected to run a ROSpec that reports tags on its own (configured once with the
vendor's tool or LLRP client, as gate installations usually are); the driver listens, answers
KEEPALIVE and turns RO_ACCESS_REPORTs into smoothed gate reads.
"""

from __future__ import annotations

import struct
from datetime import datetime

from edge.drivers.rfid_gate import GateReaderDriver, GateReaderOptions
from edge.drivers.stream import Framer, Source
from edge.protocols.llrp import LlrpDecoder, LlrpFramer, parse_header
from edge.readings import Reading
from edge.transports.tcp import TcpSource

KEEPALIVE_ACK = 72  # LLRP message type


class LlrpOptions(GateReaderOptions):
    host: str
    port: int = 5084


class LlrpDriver(GateReaderDriver):
    name = "llrp"
    Options = LlrpOptions
    options: LlrpOptions

    def setup(self) -> None:
        super().setup()
        self._decoder = LlrpDecoder(on_error=self.reject, device=self.device_id)
        self._source = TcpSource(self.options.host, self.options.port, device=self.device_id)

    def source(self) -> Source:
        return self._source

    def framer(self) -> Framer:
        return LlrpFramer(on_error=self.reject, device=self.device_id)

    def decode(self, unit: str | bytes, now: datetime) -> list[Reading]:
        message = unit.encode("latin-1") if isinstance(unit, str) else unit
        reads = self._decoder.decode(message, now)
        if self._decoder.last_message == "KEEPALIVE":
            _, _, _, message_id = parse_header(message)
            # version 1 in the top bits of the type field, length 10, same id
            self._source.send(struct.pack("!HII", (1 << 10) | KEEPALIVE_ACK, 10, message_id))
        return self.sightings(reads, now)
