"""Errors of the contract layer."""

from __future__ import annotations

from bondwatch.errors import BondWatchError


class ContractViolation(BondWatchError):
    """A message breaks contract v1; ``str()`` is the human-readable reason kept with the dead letter."""
