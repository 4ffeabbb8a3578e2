"""The ?from=&to= window of history endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query

from api.errors import Invalid

From = Annotated[datetime | None, Query(alias="from", description="RFC 3339 with offset; default: to - 24 h")]
To = Annotated[datetime | None, Query(alias="to", description="RFC 3339 with offset; default: now")]
MAX_SPAN = timedelta(days=93)


def window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise Invalid(f"'{name}' needs an offset, e.g. 2026-11-25T08:00:00+08:00")
    end = end or datetime.now(UTC)
    start = start or end - timedelta(hours=24)
    if start >= end:
        raise Invalid("'from' must be before 'to'")
    if end - start > MAX_SPAN:
        raise Invalid("a window spans at most 93 days; ask month by month")
    return start, end
