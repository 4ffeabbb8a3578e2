"""BondWatch: IoT and logistics core of a customs bonded zone's supervision platform."""

__version__ = "0.1.0"
