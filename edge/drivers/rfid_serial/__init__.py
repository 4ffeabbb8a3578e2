from edge.drivers.rfid_serial.driver import RfidSerialDriver

__all__ = ["RfidSerialDriver"]
