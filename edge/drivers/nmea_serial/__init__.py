from edge.drivers.nmea_serial.driver import NmeaSerialDriver

__all__ = ["NmeaSerialDriver"]
