"""Scheduled work inside `bondwatch serve`: a round now, then one every so often, on a daemon thread.

A round that fails with one of the job's expected errors (the database away, a bad month) is logged and the
next round tries again; anything else is a bug and ends the thread with its traceback.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class PeriodicJob(ABC):
    name: str = "job"
    expected_errors: tuple[type[Exception], ...] = ()

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    @abstractmethod
    def round(self) -> None:
        """One round of the work."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                self.round()
            except self.expected_errors as exc:
                log.error("%s job failed: %s", self.name, exc)
            if self._stop.wait(self.every_s):
                return
