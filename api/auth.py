"""Bearer tokens and roles: viewer < dispatcher < admin.

A token is shown once, when created; the database keeps only its SHA-256. Tokens are 256 random
bits, so a plain hash is enough: there is nothing to brute-force that a salt would slow down.

Timing: a request's token is hashed and the hash is looked up through the unique index on
``token_hash``; no secret is ever compared with a client's input in Python, so there is no
``==`` here to replace with ``hmac.compare_digest``. What the lookup's timing could leak is how far
the SHA-256 of the attacker's own guess matches stored hashes in the index's order: knowing bytes of
a stored hash does not help find a token that hashes to it (that is a SHA-256 preimage), so it
gives nothing away. docs/security.md has the whole argument.

Revocation (``bondwatch token revoke ID|NAME``) sets ``revoked_at``; every request reads the row,
so a revoked token gets 401 from its very next request, on every API process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import psycopg
from fastapi import Depends, Request

from api.db import Conn
from api.errors import Forbidden, Unauthorized
from bondwatch.db.settings import DbSettings

TOKEN_PREFIX = "bw_"


class Role(StrEnum):
    viewer = "viewer"
    dispatcher = "dispatcher"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: Role


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_token(settings: DbSettings, role: Role, name: str) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with psycopg.connect(settings.db_url) as conn:
        conn.execute(
            "INSERT INTO api_tokens (name, role, token_hash) VALUES (%s, %s, %s)", (name, role.value, hash_token(token))
        )
    return token


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def list_tokens(settings: DbSettings) -> list[TokenInfo]:
    with psycopg.connect(settings.db_url) as conn:
        rows = conn.execute(
            "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id"
        ).fetchall()
    return [TokenInfo(*row) for row in rows]


def revoke_token(settings: DbSettings, ident: str) -> list[tuple[int, str]]:
    """Revoke the token with id ``ident`` (digits) or every token named ``ident``; returns (id, name) of each."""
    with psycopg.connect(settings.db_url) as conn:
        if ident.isdigit():
            cur = conn.execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND id = %s RETURNING id, name",
                (int(ident),),
            )
        else:
            cur = conn.execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND name = %s RETURNING id, name",
                (ident,),
            )
        rows = cur.fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


async def principal(request: Request, conn: Conn) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    cur = await conn.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_hash = %s AND revoked_at IS NULL "
        "RETURNING id, name, role",
        (hash_token(token.strip()),),
    )
    row = await cur.fetchone()
    # Committed at once: the row lock of this UPDATE must not last as long as the request (an alert stream
    # or a month's report would hold every other request with the same token until it ends).
    await conn.commit()
    if row is None:
        raise Unauthorized("unknown or revoked token")
    return Principal(int(row[0]), str(row[1]), Role(row[2]))


def require(role: Role):  # type: ignore[no-untyped-def]
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role.rank < role.rank:
            raise Forbidden(f"this needs the {role.value} role; the token has {who.role.value}")
        return who

    return check


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Dispatcher = Annotated[Principal, Depends(require(Role.dispatcher))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
