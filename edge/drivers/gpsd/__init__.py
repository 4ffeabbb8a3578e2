from edge.drivers.gpsd.driver import GpsdDriver

__all__ = ["GpsdDriver"]
