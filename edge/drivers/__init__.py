"""The registry of input drivers: ``driver = "<name>"`` in a config file picks one of these.

Explicit on purpose: a driver exists when it is listed here, and its folder holds its code,
a sample config and a README.
"""

from __future__ import annotations

from typing import Any

from edge.drivers.base import Driver, Sink
from edge.drivers.gpsd import GpsdDriver
from edge.drivers.modbus_rtu import ModbusRtuDriver
from edge.drivers.nmea_serial import NmeaSerialDriver
from edge.drivers.rfid_serial import RfidSerialDriver
from edge.errors import ConfigError

REGISTRY: dict[str, type[Driver]] = {
    d.name: d for d in (NmeaSerialDriver, GpsdDriver, ModbusRtuDriver, RfidSerialDriver)
}
try:  # sllurp (GPL-3.0) comes with the optional `llrp` extra
    from edge.drivers.llrp import LlrpDriver

    REGISTRY[LlrpDriver.name] = LlrpDriver
except ImportError:
    pass


def build_driver(device_id: str, name: str, options: dict[str, Any], sink: Sink) -> Driver:
    try:
        cls = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"device {device_id!r}: unknown driver {name!r}; known: {known}") from None
    return cls(device_id, options, sink)
