"""Line framing shared by the text protocols (NMEA, gpsd JSON, serial RFID). No I/O.

A byte stream is cut into lines at CR and/or LF; the terminators are not part of the line::

    ... <line bytes> CR? LF ... <line bytes> CR? LF ... <tail, no terminator yet>
        └──── one line ───┘     └──── one line ───┘     └ kept for the next feed()

Empty lines (the gap of a CR LF pair) are skipped without a word. Every line that is refused is
counted in :attr:`LineFramer.rejected` by reason and handed to ``on_error`` as a
:class:`~edge.errors.FrameError`:

    overlong   longer than ``max_len`` bytes; an unterminated tail that grows past ``max_len`` is
               reported once and the rest of that line is skipped up to its terminator
    garbage    not text in the stream's encoding, control characters, or a prefix the protocol's
               framer does not recognise (see the subclasses)
    truncated  the unterminated tail left when the stream ends (:meth:`LineFramer.flush`)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from edge.errors import FrameError

ErrorHandler = Callable[[FrameError], None]

_TERMINATOR = re.compile(rb"[\r\n]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class LineFramer:
    """Cut a byte stream into text lines; subclasses add what their protocol expects of a line."""

    def __init__(
        self,
        *,
        max_len: int,
        encoding: str = "ascii",
        on_error: ErrorHandler | None = None,
        device: str | None = None,
    ) -> None:
        if max_len < 1:
            raise ValueError("max_len must be positive")
        self.max_len = max_len
        self.encoding = encoding
        self.on_error = on_error
        self.device = device
        self.rejected: Counter[str] = Counter()
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[str]:
        """Add bytes from the wire; return the lines they complete, in order."""
        self._buf += data
        out: list[str] = []
        while True:
            match = _TERMINATOR.search(self._buf)
            if match is None:
                break
            raw = bytes(self._buf[: match.start()])
            del self._buf[: match.end()]
            if self._skipping:  # the end of a line already reported as overlong
                self._skipping = False
                continue
            if raw.strip():
                out.extend(self._split(raw))
        if len(self._buf) > self.max_len:
            out.extend(self._overflow())
        return out

    def flush(self) -> list[str]:
        """The stream has ended: an unterminated tail is reported as ``truncated`` and dropped."""
        tail = bytes(self._buf)
        self._buf.clear()
        skipping, self._skipping = self._skipping, False
        if tail.strip() and not skipping:
            self._reject("truncated", "stream ended inside a line", tail)
        return []

    # -- hooks -----------------------------------------------------------------------------

    def _split(self, raw: bytes) -> list[str]:
        """One terminated line -> the lines it holds (default: itself, if it passes :meth:`_check`)."""
        line = self._check(raw)
        return [] if line is None else [line]

    def _overflow(self) -> list[str]:
        """The unterminated tail grew past ``max_len``: report it and skip to the next terminator."""
        self._reject("overlong", f"line longer than {self.max_len} bytes", bytes(self._buf[: self.max_len]))
        self._buf.clear()
        self._skipping = True
        return []

    # -- helpers for subclasses ------------------------------------------------------------

    def _check(self, raw: bytes) -> str | None:
        """Length and encoding checks of one line; ``None`` (after reporting) when refused."""
        raw = raw.strip()
        if len(raw) > self.max_len:
            self._reject("overlong", f"line of {len(raw)} bytes, more than {self.max_len}", raw)
            return None
        try:
            line = raw.decode(self.encoding)
        except UnicodeDecodeError:
            self._reject("garbage", f"line is not {self.encoding} text", raw)
            return None
        if _CONTROL.search(line):
            self._reject("garbage", "control characters in line", raw)
            return None
        return line

    def _reject(self, reason: str, message: str, raw: bytes) -> None:
        self.rejected[reason] += 1
        if self.on_error is not None:
            self.on_error(FrameError(reason, message, raw=raw, device=self.device))
