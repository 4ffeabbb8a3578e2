"""Reading and writing one registry table: list, get by key, upsert by key, all in one statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from api.db import Conn
from api.errors import Conflict, Invalid, NotFound


@dataclass(frozen=True)
class RegistryTable:
    table: str
    key: str
    columns: tuple[str, ...]  # writable columns besides the key
    noun: str

    @property
    def _select(self) -> sql.Composed:
        cols = [self.key, *self.columns, "updated_at"]
        return sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, cols)), sql.Identifier(self.table)
        )

    async def list(self, conn: Conn) -> list[dict[str, Any]]:
        query = sql.SQL("{} ORDER BY {}").format(self._select, sql.Identifier(self.key))
        cur = await conn.cursor(row_factory=dict_row).execute(query)
        return await cur.fetchall()

    async def get(self, conn: Conn, key: str) -> dict[str, Any]:
        query = sql.SQL("{} WHERE {} = %s").format(self._select, sql.Identifier(self.key))
        cur = await conn.cursor(row_factory=dict_row).execute(query, (key,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no {self.noun} {key!r}")
        return row

    async def upsert(self, conn: Conn, key: str, values: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace the row; a reference to something unknown is a 422 that names it."""
        cols = [self.key, *self.columns]
        query = sql.SQL(
            "INSERT INTO {table} ({cols}) VALUES ({params}) "
            "ON CONFLICT ({key}) DO UPDATE SET {sets}, updated_at = now()"
        ).format(
            table=sql.Identifier(self.table),
            cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
            params=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            key=sql.Identifier(self.key),
            sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in self.columns),
        )
        try:
            await conn.execute(query, (key, *(values[c] for c in self.columns)))
        except psycopg.errors.ForeignKeyViolation as exc:
            raise Invalid(
                f"{self.noun} {key!r} refers to something not registered: {exc.diag.message_detail or exc}"
            ) from None
        except psycopg.errors.UniqueViolation as exc:
            # The key cannot clash (ON CONFLICT); another unique column can, e.g. a vehicle's terminal.
            raise Conflict(
                f"{self.noun} {key!r} takes what another {self.noun} has: {exc.diag.message_detail or exc}"
            ) from None
        except psycopg.errors.CheckViolation as exc:
            raise Invalid(f"{self.noun} {key!r} breaks a rule of the registry: {exc.diag.constraint_name}") from None
        return await self.get(conn, key)
