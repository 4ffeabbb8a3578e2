"""Identifier forms of path parameters and body fields, from the contract's own patterns."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

from bondwatch.contract.payloads import EPC_PATTERN
from bondwatch.contract.topics import DEVICE_ID_PATTERN

# Vehicles, profiles, geofences and release notes use the same form as device ids.
ID_PATTERN = DEVICE_ID_PATTERN

IdPath = Annotated[str, Path(pattern=ID_PATTERN)]
EpcPath = Annotated[str, Path(pattern=EPC_PATTERN)]
IdField = Annotated[str, Field(pattern=ID_PATTERN)]
EpcField = Annotated[str, Field(pattern=EPC_PATTERN)]
