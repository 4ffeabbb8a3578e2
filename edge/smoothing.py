"""ALE-style smoothing of RFID sightings: many raw reads of one tag -> one TagRead per window. No I/O.

A reader reports a tag in front of it dozens of times a second. :class:`TagSmoother` collapses the
sightings of one key into a single read per window, as an ALE event cycle does::

    now ─────────────────────────────────────────────────────────────────────────────────▶
    key A   x  x x   x      x                     x  x
            ├──────── window_s ────────┤          ├──────── window_s ────────┤
            opened                      closes -> 1 TagRead (count 5)        -> 1 TagRead (count 2)

* Window: opens at the ``now`` of the key's first sighting and closes ``window_s`` later
  (tumbling, per key). A sighting at or after the close starts the key's next window. A tag
  that stays in the field therefore yields one read per window, never an endless one.
* Clock: windows are measured on the ``now`` the caller passes to :meth:`TagSmoother.add` and
  :meth:`TagSmoother.flush` (its receive clock), never on the wall clock and never on the reads'
  own timestamps (reader clocks drift and LLRP reports can be buffered); the result is
  deterministic for given inputs.
* Key: the EPC alone by default (``per_antenna=False``): a gate wants one read per tag however
  many of its antennas saw it. ``per_antenna=True`` keys on (EPC, antenna), for readers whose
  antennas watch different lanes or directions.
* Result: ``first_seen`` the earliest sighting (``first_seen`` or ``ts`` of the inputs), ``ts`` the
  latest ``ts`` (last seen), ``count`` the sum of the inputs' counts, ``rssi_dbm`` the peak;
  ``antenna``, ``gate_id`` and ``direction`` are those of the strongest sighting (the earliest of
  equals; a sighting without RSSI counts as weaker than any with one), ``epc_uri`` the first known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from edge.readings import TagRead

Key = tuple[str, int | None]


@dataclass(slots=True)
class _Window:
    closes_at: datetime
    reads: list[TagRead] = field(default_factory=list)


class TagSmoother:
    """Collapse sightings of the same tag (and antenna, if asked) within ``window_s`` seconds."""

    def __init__(self, window_s: float, *, per_antenna: bool = False) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError("window_s must be a positive number of seconds")
        self.window = timedelta(seconds=window_s)
        self.per_antenna = per_antenna
        self._open: dict[Key, _Window] = {}
        self._closed: list[TagRead] = []

    def __len__(self) -> int:
        """Windows still open."""
        return len(self._open)

    def add(self, read: TagRead, now: datetime) -> None:
        """Account one sighting received at ``now``."""
        key: Key = (read.epc, read.antenna if self.per_antenna else None)
        window = self._open.get(key)
        if window is not None and now >= window.closes_at:
            self._closed.append(_merge(window.reads))
            window = None
        if window is None:
            window = self._open[key] = _Window(closes_at=now + self.window)
        window.reads.append(read)

    def flush(self, now: datetime) -> list[TagRead]:
        """The reads of every window closed by ``now``, ordered by first seen, then EPC and antenna."""
        out, self._closed = self._closed, []
        for key in [k for k, w in self._open.items() if now >= w.closes_at]:
            out.append(_merge(self._open.pop(key).reads))
        return sorted(out, key=_order)

    def flush_all(self) -> list[TagRead]:
        """Every window, open or closed (shutdown)."""
        out, self._closed = self._closed, []
        out.extend(_merge(w.reads) for w in self._open.values())
        self._open.clear()
        return sorted(out, key=_order)


def _merge(reads: list[TagRead]) -> TagRead:
    strongest = reads[0]
    for read in reads[1:]:
        if read.rssi_dbm is not None and (strongest.rssi_dbm is None or read.rssi_dbm > strongest.rssi_dbm):
            strongest = read
    return replace(
        strongest,
        ts=max(r.ts for r in reads),
        first_seen=min(r.first_seen or r.ts for r in reads),
        count=sum(r.count for r in reads),
        epc_uri=next((r.epc_uri for r in reads if r.epc_uri is not None), None),
    )


def _order(read: TagRead) -> tuple[datetime, str, int]:
    return (read.first_seen or read.ts, read.epc, -1 if read.antenna is None else read.antenna)
