"""Exception tree of the edge package; every error carries the device and, where there is one, the raw frame."""

from __future__ import annotations

from bondwatch.errors import BondWatchError


class EdgeError(BondWatchError):
    """Base of edge errors."""


class ConfigError(EdgeError):
    """The edge config file is unusable; the text names the file, device and key."""


class FrameError(EdgeError):
    """A frame or sentence was refused: bad checksum or CRC, truncated, malformed, unusable content.

    ``reason`` is a short stable key used as a metric label (e.g. ``bad_checksum``, ``no_fix``,
    ``crc``); ``raw`` is the frame as received.
    """

    def __init__(self, reason: str, message: str, raw: bytes = b"", device: str | None = None) -> None:
        super().__init__(f"{device + ': ' if device else ''}{message}")
        self.reason = reason
        self.raw = raw
        self.device = device


class DeviceError(EdgeError):
    """A device did not answer as it should (timeout, exception response, port gone)."""

    def __init__(self, reason: str, message: str, device: str | None = None) -> None:
        super().__init__(f"{device + ': ' if device else ''}{message}")
        self.reason = reason
        self.device = device


class QueueFull(EdgeError):
    """The on-disk queue is at its bound and its policy refuses new readings."""
