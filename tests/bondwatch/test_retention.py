"""Retention: expired chunks go, recent readings stay, and the services' role cannot ask for less than 30 days."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from bondwatch.db.retention import drop_expired, license_of
from bondwatch.db.settings import DbSettings
from bondwatch.settings import load_settings


def test_drop_expired_keeps_recent_and_drops_old(db: psycopg.Connection[Any], test_env: dict[str, str]) -> None:
    for age in ("5 years", "1 day"):
        db.execute(
            "INSERT INTO temperatures (ts, device_id, seq, temp_c) VALUES (now() - %s::interval, 'ret-1', %s, 3)",
            (age, 1 if age == "1 day" else 0),
        )
    settings = load_settings(DbSettings)
    assert drop_expired(settings) >= 1
    left = db.execute("SELECT seq FROM temperatures WHERE device_id = 'ret-1'").fetchall()
    assert left == [(1,)]


def test_too_short_retention_is_refused(test_env: dict[str, str]) -> None:
    with psycopg.connect(test_env["BONDWATCH_DB_URL"], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="30 days"):
            conn.execute("SELECT bondwatch_drop_expired(interval '1 day')")
        assert license_of(conn) in ("apache", "timescale")
