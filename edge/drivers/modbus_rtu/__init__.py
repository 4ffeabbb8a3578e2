"""Modbus RTU cold-room sensors on an RS-485 bus; see README.md beside this file and ``driver.py``."""

from edge.drivers.modbus_rtu.driver import ModbusRtuDriver, ModbusRtuOptions, SensorOptions

__all__ = ["ModbusRtuDriver", "ModbusRtuOptions", "SensorOptions"]
