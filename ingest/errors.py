"""Exception tree of the ingest package."""

from __future__ import annotations

from bondwatch.errors import BondWatchError


class IngestError(BondWatchError):
    """Base of ingest errors."""


class BrokerUnavailable(IngestError):
    """The broker refused or dropped the connection; carries the broker's reason."""

    def __init__(self, client_id: str, reason: str) -> None:
        super().__init__(f"{client_id}: broker unavailable: {reason}")
        self.client_id = client_id
        self.reason = reason


class BatchRejected(IngestError):
    """The database refused a batch for its content (not for a lost connection)."""
