"""Versioned SQL migrations: ``migrations/NNNN_name.sql``, each applied once, in order, atomically.

An applied migration is never edited: its checksum is recorded and a mismatch stops the run. After
the files, the login roles named by the settings' URLs are made members of the writer and reader
groups and the groups' privileges are granted afresh, so a new table is covered on the next run.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from bondwatch.db.retention import apply_native_policies
from bondwatch.db.settings import DbSettings
from bondwatch.errors import MigrationError

log = logging.getLogger(__name__)

LOCK_ID = 0x0716_B0D0  # advisory lock: one migrator at a time

GRANTS = """
GRANT USAGE ON SCHEMA public TO bondwatch_writer, bondwatch_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bondwatch_writer;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO bondwatch_writer;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO bondwatch_reader;
REVOKE ALL ON api_tokens, schema_migrations, rule_state FROM bondwatch_reader;
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM bondwatch_writer;
"""


def migration_files() -> list[tuple[str, str]]:
    folder = resources.files("bondwatch.db").joinpath("migrations")
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name.removesuffix(".sql"), folder.joinpath(name).read_text()) for name in files]


def migrate(settings: DbSettings) -> list[str]:
    """Apply pending migrations; returns the versions applied in this run."""
    applied_now: list[str] = []
    with psycopg.connect(settings.db_admin_url or settings.db_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done: dict[str, str] = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
            for version, text in migration_files():
                checksum = hashlib.sha256(text.encode()).hexdigest()
                if version in done:
                    if done[version] != checksum:
                        raise MigrationError(version, "already applied with different content; add a new migration")
                    continue
                log.info("applying migration %s", version)
                try:
                    with conn.transaction():
                        conn.execute(text.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)", (version, checksum)
                        )
                except psycopg.Error as exc:
                    raise MigrationError(version, str(exc).strip()) from exc
                applied_now.append(version)
            if settings.db_admin_url:
                _ensure_login(conn, settings.db_url, "bondwatch_writer")
            if settings.db_readonly_url:
                _ensure_login(conn, settings.db_readonly_url, "bondwatch_reader")
            conn.execute(GRANTS.encode())
            apply_native_policies(conn, settings)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    return applied_now


def _ensure_login(conn: psycopg.Connection[tuple[object, ...]], url: str, group: str) -> None:
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not user:
        return
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(user), sql.Literal(password)
        )
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(user)))
