"""Database roles: the services' login owns nothing and changes no schema; Grafana's reads only.

tests/bondwatch/test_services.py covers the basics (no superuser, no DDL on the tables, reader
cannot write or read tokens); these add ownership, functions and the internal tables.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

SECRET_TABLES = ("api_tokens", "schema_migrations", "rule_state")
NOT_SELECT = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def _connect(test_env: dict[str, str], key: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(test_env[key], autocommit=True)


@pytest.fixture
def app(test_env: dict[str, str]) -> Any:
    with _connect(test_env, "BONDWATCH_DB_URL") as conn:
        yield conn


@pytest.fixture
def reader(test_env: dict[str, str]) -> Any:
    with _connect(test_env, "BONDWATCH_DB_READONLY_URL") as conn:
        yield conn


def test_app_role_owns_nothing(app: psycopg.Connection[Any]) -> None:
    for catalog, owner in (("pg_class", "relowner"), ("pg_proc", "proowner"), ("pg_namespace", "nspowner")):
        row = app.execute(
            f"SELECT count(*) FROM {catalog} WHERE pg_has_role(current_user, {owner}, 'MEMBER')"  # fixed names
        ).fetchone()
        assert row == (0,), f"the services' role owns something in {catalog}"


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE SCHEMA intruder",
        "CREATE VIEW intruder AS SELECT 1",
        "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE INDEX intruder ON devices (name)",
        "ALTER ROLE CURRENT_USER CREATEROLE",
        "SELECT drop_chunks('positions', older_than => interval '1 day')",
        "SELECT bondwatch_drop_expired(interval '1 day')",  # the function itself keeps at least 30 days
    ],
)
def test_app_role_cannot_change_schema_or_rights(app: psycopg.Connection[Any], statement: str) -> None:
    with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)):
        app.execute(statement)


def test_app_role_cannot_pass_its_rights_on(app: psycopg.Connection[Any], reader: psycopg.Connection[Any]) -> None:
    # Without GRANT OPTION, PostgreSQL answers a GRANT with a warning and grants nothing.
    app.execute("GRANT SELECT ON api_tokens TO bondwatch_reader")
    app.execute("GRANT SELECT ON devices TO PUBLIC")
    assert reader.execute("SELECT has_table_privilege('api_tokens', 'SELECT')").fetchone() == (False,)
    assert app.execute("SELECT has_table_privilege('public', 'devices', 'SELECT')").fetchone() == (False,)


def test_app_role_may_stage_in_temp_tables(app: psycopg.Connection[Any]) -> None:
    # Ingest and rules stage COPY batches in session-local temp tables; nothing else is created.
    app.execute("CREATE TEMP TABLE stage_probe (x int) ON COMMIT DROP")


def test_app_role_reads_tokens_for_auth_but_not_migrations(app: psycopg.Connection[Any]) -> None:
    # The API authenticates with this role, so it reads api_tokens (hashes only) and marks last use.
    assert app.execute("SELECT has_table_privilege('api_tokens', 'SELECT')").fetchone() == (True,)
    assert app.execute("SELECT has_table_privilege('api_tokens', 'TRUNCATE')").fetchone() == (False,)
    for priv in ("INSERT", "UPDATE", "DELETE"):
        assert app.execute("SELECT has_table_privilege('schema_migrations', %s)", (priv,)).fetchone() == (False,)


def test_reader_has_select_only_and_no_internal_tables(reader: psycopg.Connection[Any]) -> None:
    tables = [
        r[0]
        for r in reader.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')"
        ).fetchall()
    ]
    assert "positions" in tables
    for table in tables:
        for priv in NOT_SELECT:
            assert reader.execute("SELECT has_table_privilege(%s, %s)", (f"public.{table}", priv)).fetchone() == (
                False,
            ), f"reader has {priv} on {table}"
        readable = reader.execute("SELECT has_table_privilege(%s, 'SELECT')", (f"public.{table}",)).fetchone()
        assert readable == (table not in SECRET_TABLES,), table


@pytest.mark.parametrize("table", SECRET_TABLES)
def test_reader_cannot_read_internal_tables(reader: psycopg.Connection[Any], table: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute(f"SELECT * FROM {table} LIMIT 1")  # table from the fixed list above


def test_reader_cannot_call_privileged_functions(reader: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute("SELECT bondwatch_drop_expired(interval '3650 days')")


def test_every_security_definer_function_is_closed_to_public(app: psycopg.Connection[Any]) -> None:
    """A SECURITY DEFINER function runs with its owner's rights: PUBLIC must not hold EXECUTE on it."""
    rows = app.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND p.prosecdef "
        "AND has_function_privilege('bondwatch_reader', p.oid, 'EXECUTE') "
        "AND NOT pg_has_role('bondwatch_reader', 'bondwatch_writer', 'MEMBER')"
        "AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
        "            WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')"
    ).fetchall()
    assert rows == [], f"open to PUBLIC: {rows}"
