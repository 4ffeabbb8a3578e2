"""A TCP connection (gpsd, LLRP readers) as a stream of byte chunks, reconnected with backoff."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

from edge.errors import DeviceError

log = logging.getLogger(__name__)


class TcpSource:
    def __init__(self, host: str, port: int, hello: bytes = b"", device: str | None = None):
        self.host = host
        self.port = port
        self.hello = hello  # sent after each connect (e.g. gpsd's ?WATCH)
        self.device = device
        self._sock: socket.socket | None = None

    def send(self, data: bytes) -> None:
        """Write to the current connection (e.g. an LLRP KEEPALIVE_ACK); dropped when not connected."""
        if self._sock is not None:
            try:
                self._sock.sendall(data)
            except OSError as exc:
                log.warning("%s: send failed: %s", self.device, exc)

    def chunks(self, stop: threading.Event, max_backoff_s: float = 30.0) -> Iterator[bytes | DeviceError]:
        """Bytes as they arrive; a DeviceError item for each failed connection (then it reconnects)."""
        delay = 1.0
        while not stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=5) as sock:
                    sock.settimeout(0.5)
                    self._sock = sock
                    if self.hello:
                        sock.sendall(self.hello)
                    log.info("%s: connected to %s:%d", self.device, self.host, self.port)
                    delay = 1.0
                    while not stop.is_set():
                        try:
                            data = sock.recv(65536)
                        except TimeoutError:
                            yield b""  # idle: the driver may do timed work
                            continue
                        if not data:
                            raise ConnectionError("closed by peer")
                        yield data
            except OSError as exc:
                self._sock = None
                yield DeviceError("connection", f"{self.host}:{self.port}: {exc}", self.device)
                stop.wait(delay)
                delay = min(delay * 2, max_backoff_s)
