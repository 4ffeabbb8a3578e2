"""`bondwatch serve`'s parts that run as child processes, so that they use more than one core.

Ingest and the rules engine each spend ~100 µs of CPU per message in Python (paho's receive path,
validation, the rules); in one process they would share one interpreter lock and, at a few
thousand messages per second, queue behind each other. As children they run in parallel. A child
dies with its parent (``PR_SET_PDEATHSIG``: even a ``kill -9`` of `bondwatch serve` leaves no
orphan holding the broker sessions), and one that exits unexpectedly is started again.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
RESTART_DELAY_S = 1.0


# Loaded before any fork: the function run between fork and exec must take no Python-level locks.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """One `bondwatch` subcommand, supervised."""

    def __init__(self, *args: str) -> None:
        self.args = [str(Path(sys.executable).with_name("bondwatch")), *args]
        self.name = " ".join(args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"child {self.name}", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(self.args, env=os.environ.copy(), preexec_fn=_die_with_parent)
        log.info("started `bondwatch %s` (pid %d)", self.name, self._proc.pid)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error("`bondwatch %s` exited with %d; starting it again", self.name, code)
            if self._stopping.wait(RESTART_DELAY_S):
                return
            self._spawn()

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("`bondwatch %s` did not stop within %.0f s; killing it", self.name, timeout)
            proc.kill()
            proc.wait()
