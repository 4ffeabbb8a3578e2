"""A device that talks by itself on a serial line: writes its frames to a pty at a fixed rate.

Subclasses say what to write at each tick; faults that any such device can show are here:
silence, repeated frames and a corrupted byte.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from simulators.pty import PtyPair

log = logging.getLogger(__name__)


class SerialDevice(ABC):
    def __init__(self, period_s: float = 1.0, link: Path | str | None = None) -> None:
        self.period_s = period_s
        self.pty = PtyPair(link)
        self.frames_written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._silent_until = 0.0
        self._repeat = 0
        self._corrupt = 0

    @property
    def path(self) -> str:
        return self.pty.path

    @abstractmethod
    def frames(self, now: datetime) -> list[bytes]:
        """What the device writes at this tick."""

    def start(self) -> Self:
        self.pty.open()
        self._thread = threading.Thread(target=self._loop, name=f"sim-{self.path}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.pty.close()

    # faults
    def go_silent(self, seconds: float) -> None:
        self._silent_until = time.monotonic() + seconds

    def repeat_next(self, n: int = 1) -> None:
        self._repeat += n

    def corrupt_next(self, n: int = 1) -> None:
        """Flip a bit in the next ``n`` frames (a checksum the receiver must refuse)."""
        self._corrupt += n

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= self._silent_until:
                out = []
                for frame in self.frames(datetime.now(UTC)):
                    if self._corrupt:
                        self._corrupt -= 1
                        frame = _flip(frame)
                    out.append(frame)
                    if self._repeat:
                        self._repeat -= 1
                        out.append(frame)
                self._write(b"".join(out))
                self.frames_written += len(out)
            next_tick += self.period_s
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.pty.master_fd, data)
        except OSError as exc:  # nobody reading and the buffer full, or unplugged
            log.debug("%s: write failed: %s", self.path, exc)


def _flip(frame: bytes) -> bytes:
    """Change one payload character (not the framing), as line noise would."""
    body = bytearray(frame)
    index = len(body) // 2
    body[index] = ord("7") if body[index] != ord("7") else ord("3")
    return bytes(body)
