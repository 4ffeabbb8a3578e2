"""Modbus RTU cold-room sensors on a virtual serial port: several slaves on one simulated RS-485 bus.

    driver ── ModbusSerialClient ── pty slave ══ pty master ── ModbusSensorSimulator (thread)
                                                               │ request bytes -> FramerRTU (CRC, PDU)
                                                               │ slave id -> image() -> registers/bits
                                                               │ fault switches (crc / silence / exception / repeat)
                                                               └ response PDU -> FramerRTU -> bytes

    what one exchange looks like on the master fd:
      in   01 04 0001 0002 200B          read input registers 1..2 of slave 1
      out  01 04 04 0131 0222 2ACE       normal answer
      out  01 04 04 0131 0222 2A31       corrupt_crc: last CRC byte inverted
      out  (nothing)                     silence: the master times out
      out  01 84 02 C2C1                 exception: fc | 0x80, code 2 (illegal data address)
      out  <frame><frame>                repeat: the same answer twice, back to back

Each slave's registers come from a callable returning an :data:`Image` (function code ->
address -> value), called on every request, so a thermal model can drive the values live;
:func:`image_from_values` builds one from physical values and a register map, with the same
conversions the driver decodes with. Requests for slave ids nobody serves get no answer, as on a
real multi-drop bus. Framing and PDUs are pymodbus's (``FramerRTU``, ``Read*Response``,
``ExceptionResponse``); only the loop around the pty is this module's, because fault injection
needs the bytes between the PDU and the wire, which pymodbus's server does not expose.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import select
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from edge.protocols.modbus_map import Point, encode
from simulators.pty import PtyPair

log = logging.getLogger(__name__)

#: What a slave shows right now: function code (1 coils, 2 discrete inputs, 3 holding, 4 input
#: registers) -> address -> value (bool for 1/2, 0..0xFFFF for 3/4).
Image = Mapping[int, Mapping[int, int | bool]]
ImageSource = Callable[[], Image]
FaultKind = Literal["corrupt_crc", "silence", "exception", "repeat"]

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
SLAVE_DEVICE_FAILURE = 0x04

_RESPONSES: dict[int, type[ModbusPDU]] = {
    1: ReadCoilsResponse,
    2: ReadDiscreteInputsResponse,
    3: ReadHoldingRegistersResponse,
    4: ReadInputRegistersResponse,
}
# RTU frames are delimited by 3.5 character times of silence; a partial frame older than this is
# line noise, dropped so it cannot glue itself to the next request.
_STALE_PARTIAL_S = 0.05


def image_from_values(points: Sequence[Point], values: Mapping[str, float | bool]) -> dict[int, dict[int, int | bool]]:
    """The registers a sensor with this register map shows for these values (points without a value are absent)."""
    image: dict[int, dict[int, int | bool]] = {}
    for point in points:
        if point.name not in values:
            continue
        table = image.setdefault(point.function, {})
        for i, word in enumerate(encode(point, values[point.name])):
            table[point.address + i] = word
    return image


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    slave: int | None
    code: int = SLAVE_DEVICE_FAILURE


class ModbusSensorSimulator:
    """Modbus RTU slaves behind one pty; ``path`` is the serial port a driver opens.

    Fault switches act on the next ``n`` requests addressed to a served slave (``slave=None``: any);
    several armed faults are consumed in the order they were armed, one per request.
    """

    def __init__(self, slaves: Mapping[int, ImageSource], link: Path | str | None = None) -> None:
        self.slaves = dict(slaves)
        self.pty = PtyPair(link)
        self.requests: Counter[int] = Counter()  # per slave id, served or not
        self.answered: Counter[int] = Counter()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._framer = FramerRTU(DecodePDU(is_server=True))

    @property
    def path(self) -> str:
        return self.pty.path

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ModbusSensorSimulator:
        with self._lock:
            self.pty.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="modbus-sensor-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        with self._lock:
            self.pty.close()

    def unplug(self) -> None:
        """The adapter disappears: the port's path is gone and an open port fails with EIO."""
        with self._lock:
            self.pty.unplug()

    def replug(self) -> None:
        """The adapter is back, as a new pty behind the same link."""
        with self._lock:
            self.pty.replug()

    def __enter__(self) -> ModbusSensorSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- fault switches ----------------------------------------------------------------------

    def corrupt_crc(self, n: int = 1, slave: int | None = None) -> None:
        self._arm(_Fault("corrupt_crc", n, slave))

    def silence(self, n: int = 1, slave: int | None = None) -> None:
        self._arm(_Fault("silence", n, slave))

    def exception(self, code: int = SLAVE_DEVICE_FAILURE, n: int = 1, slave: int | None = None) -> None:
        self._arm(_Fault("exception", n, slave, code))

    def repeat(self, n: int = 1, slave: int | None = None) -> None:
        self._arm(_Fault("repeat", n, slave))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _arm(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("a fault needs n >= 1")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, slave: int) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.slave in (None, slave):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- the bus -----------------------------------------------------------------------------

    def _serve(self) -> None:
        buffer = b""
        last_rx = 0.0
        while not self._stop.is_set():
            fd = self.pty.master_fd
            if fd < 0:  # unplugged
                buffer = b""
                time.sleep(0.02)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.02)
                if not ready:
                    if buffer and time.monotonic() - last_rx > _STALE_PARTIAL_S:
                        log.debug("dropping stale partial frame %s", buffer.hex(" "))
                        buffer = b""
                    continue
                chunk = os.read(fd, 512)
            except (OSError, ValueError) as exc:
                # EIO: nobody holds the slave open (open_pty_pair); EBADF: unplugged under us.
                if isinstance(exc, OSError) and exc.errno not in (errno.EIO, errno.EBADF):
                    log.warning("pty read failed: %s", exc)
                time.sleep(0.02)
                continue
            buffer += chunk
            last_rx = time.monotonic()
            while buffer:
                try:
                    used, request = self._framer.handleFrame(buffer, 0, 0)
                except ModbusException as exc:  # CRC-valid but undecodable: drop it like a slave would
                    log.debug("undecodable request %s: %s", buffer.hex(" "), exc)
                    buffer = b""
                    break
                buffer = buffer[used:]
                if request is None:
                    break  # incomplete (wait for more bytes) or CRC-bad (already consumed)
                self._answer(fd, request)

    def _answer(self, fd: int, request: ModbusPDU) -> None:
        slave = request.dev_id
        self.requests[slave] += 1
        source = self.slaves.get(slave)
        if source is None:
            return  # not ours: on a shared bus another slave (or nobody) answers
        response = self._respond(slave, source, request)
        fault = self._take_fault(slave)
        if fault is not None and fault.kind == "silence":
            log.debug("slave %d: silent (fault)", slave)
            return
        if fault is not None and fault.kind == "exception":
            response = ExceptionResponse(request.function_code, fault.code, device_id=slave)
        response.dev_id = slave
        frame = self._framer.buildFrame(response)
        if fault is not None and fault.kind == "corrupt_crc":
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        if fault is not None and fault.kind == "repeat":
            frame += frame  # one write, so both copies reach the master within one read
        try:
            os.write(fd, frame)
        except OSError as exc:
            log.debug("slave %d: write failed: %s", slave, exc)
            return
        self.answered[slave] += 1

    def _respond(self, slave: int, source: ImageSource, request: ModbusPDU) -> ModbusPDU:
        fc = request.function_code
        response_class = _RESPONSES.get(fc)
        if response_class is None:
            return ExceptionResponse(fc, ILLEGAL_FUNCTION, device_id=slave)
        try:
            table = source().get(fc, {})
        except Exception:  # a broken model is the device failing, not the simulator
            log.exception("slave %d: image source failed", slave)
            return ExceptionResponse(fc, SLAVE_DEVICE_FAILURE, device_id=slave)
        addresses = range(request.address, request.address + request.count)
        if any(a not in table for a in addresses):
            return ExceptionResponse(fc, ILLEGAL_DATA_ADDRESS, device_id=slave)
        if fc in (1, 2):
            return response_class(bits=[bool(table[a]) for a in addresses], dev_id=slave)
        return response_class(registers=[int(table[a]) & 0xFFFF for a in addresses], dev_id=slave)


def _constant(image: Image) -> ImageSource:
    return lambda: image


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the Modbus sensors of an edge config (e.g. the driver's sample.toml) at fixed values."""
    import tomllib

    from edge.drivers.modbus_rtu.driver import ModbusRtuOptions

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("config", type=Path, help="a TOML file with [[devices]] of driver modbus_rtu")
    parser.add_argument("--link", type=Path, default=Path("/tmp/bondwatch-rs485"), help="symlink to the pty")
    parser.add_argument("--temp", type=float, default=4.0)
    parser.add_argument("--rh", type=float, default=85.0)
    args = parser.parse_args(argv)
    devices = tomllib.loads(args.config.read_text()).get("devices", [])
    slaves: dict[int, ImageSource] = {}
    fixed: dict[str, float | bool] = {"temp_c": args.temp, "rh_pct": args.rh, "door_open": False, "battery_v": 3.6}
    for device in devices:
        if device.get("driver") != "modbus_rtu":
            continue
        options = ModbusRtuOptions.model_validate({k: v for k, v in device.items() if k not in ("id", "driver")})
        for sensor in options.sensors:
            slaves[sensor.slave] = _constant(image_from_values(sensor.points, fixed))
    done = threading.Event()
    # SIGTERM as well as Ctrl-C, so the symlink is removed however the simulator is stopped.
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with ModbusSensorSimulator(slaves, link=args.link) as sim:
        print(f"serving slaves {sorted(slaves)} on {sim.path} -> {sim.pty.slave_path}; Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()


if __name__ == "__main__":
    main()
