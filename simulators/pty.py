"""Virtual serial ports for device simulators: a pseudo-terminal pair stands in for a cable.

    driver (pyserial)                         simulator
    open(slave_path) ── /dev/pts/N ══ pty ══ master_fd ── os.read / os.write
                         (symlink, optional: /tmp/.../ttyRS485 -> /dev/pts/N)

Whatever the simulator writes on the master fd, the driver reads from the slave path, and the
other way round, with no real UART in between (the baud rate a driver sets is accepted and
ignored). The slave side is put in raw mode so the tty line discipline neither echoes nor
translates bytes: binary protocols (Modbus RTU, serial RFID) pass through byte for byte.

Two ways in:

* :func:`open_pty_pair` returns ``(master_fd, slave_path)`` and nothing else; the caller closes
  ``master_fd``. While no process has the slave open, reading the master fails with ``EIO``.
* :class:`PtyPair` is a context manager that also keeps a slave fd of its own open, so a driver
  may close and reopen the port (reconnects) without the master side seeing a hang-up, and can
  publish the port under a stable symlink, the way udev's ``/dev/serial/by-id/...`` does;
  :meth:`PtyPair.replug` swaps in a fresh pty behind the same link, to play "cable pulled".
"""

from __future__ import annotations

import contextlib
import logging
import os
import tty
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


def _openpty() -> tuple[int, int, str]:
    master_fd, slave_fd = os.openpty()
    # Raw mode on the slave: no echo of what the master writes back to it, no CR/LF mapping, no
    # signals on 0x03: a binary frame must arrive exactly as it was written.
    tty.setraw(slave_fd)
    return master_fd, slave_fd, os.ttyname(slave_fd)


def open_pty_pair() -> tuple[int, str]:
    """A new pseudo-terminal: the master fd (the caller's to close) and the slave's device path."""
    master_fd, slave_fd, slave_path = _openpty()
    os.close(slave_fd)
    return master_fd, slave_path


class PtyPair:
    """A pty pair held open for a ``with`` block, optionally reachable under a symlink.

    ``path`` is what a driver should open: the symlink when one was asked for, else the slave path.
    """

    def __init__(self, link: Path | str | None = None) -> None:
        self.link = Path(link) if link is not None else None
        self.master_fd = -1
        self.slave_path = ""
        self._slave_fd = -1

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self.slave_path

    def open(self) -> PtyPair:
        self.master_fd, self._slave_fd, self.slave_path = _openpty()
        if self.link is not None:
            # Replace atomically so a driver polling the link never sees it missing half-way.
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            tmp.replace(self.link)
        log.debug("pty %s open (master fd %d)", self.path, self.master_fd)
        return self

    def close(self, *, keep_link: bool = False) -> None:
        """Close both ends; a process holding the slave then gets ``EIO`` on its next write or read."""
        for fd in (self.master_fd, self._slave_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self._slave_fd = -1
        if self.link is not None and not keep_link:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def unplug(self) -> None:
        """The cable is pulled: both ends close and the link disappears, as a USB adapter's would."""
        self.close()

    def replug(self) -> None:
        """A fresh pty behind the same link (a new ``/dev/pts/N``, as after re-plugging an adapter)."""
        self.close()
        self.open()

    def __enter__(self) -> PtyPair:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
