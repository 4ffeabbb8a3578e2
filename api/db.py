"""The API's connection pool; one connection per request, committed when the request succeeds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from api.settings import ApiSettings


def make_pool(settings: ApiSettings) -> AsyncConnectionPool[AsyncConnection[TupleRow]]:
    async def configure(conn: AsyncConnection[TupleRow]) -> None:
        # Timestamps leave the API with the zone's own offset (+08:00).
        await conn.execute("SELECT set_config('TimeZone', %s, false)", (settings.api_timezone,))
        await conn.commit()

    return AsyncConnectionPool(
        settings.db_url,
        min_size=1,
        max_size=settings.api_db_pool_max,
        configure=configure,
        open=False,
        kwargs={"application_name": "bondwatch-api"},
    )


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection[TupleRow]]:
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]] = request.app.state.pool
    async with pool.connection() as conn:
        yield conn


# scope="function": the transaction commits before the response leaves, so a client that reads
# right after a write sees it.
Conn = Annotated[AsyncConnection[TupleRow], Depends(get_conn, scope="function")]
