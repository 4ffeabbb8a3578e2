"""Errors of the rules engine, with the context needed to act on them."""

from __future__ import annotations

from bondwatch.errors import BondWatchError


class RulesError(BondWatchError):
    """Base of the rules engine's errors."""


class StepFailed(RulesError):
    def __init__(self, step: str, device_id: str | None, cause: BaseException) -> None:
        self.step, self.device_id, self.cause = step, device_id, cause
        where = f" on a reading of {device_id}" if device_id else ""
        super().__init__(f"rule step {step} failed{where}: {type(cause).__name__}: {cause}")


class StateUnreadable(RulesError):
    def __init__(self, rule: str, subject: str, cause: BaseException) -> None:
        super().__init__(f"checkpointed state of {rule}/{subject} is unreadable ({cause}); starting it afresh")
