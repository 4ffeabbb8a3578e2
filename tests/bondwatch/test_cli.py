"""The installed `bondwatch` command, run as a user runs it, against the test database."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

BONDWATCH = Path(sys.executable).with_name("bondwatch")
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`bondwatch ARGS` from the checkout, with os.environ (the test settings) plus ``env``."""
    assert BONDWATCH.exists(), f"console script not installed at {BONDWATCH}"
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **env}
    return subprocess.run(
        [str(BONDWATCH), *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


def flat(text: str) -> str:
    """Rich's boxes and line wrapping removed, so a message can be searched for."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def passwords(test_env: dict[str, str]) -> set[str]:
    found = {urlsplit(url).password for key, url in test_env.items() if key.endswith("_URL")}
    found.discard(None)
    assert found, "the test settings carry no password: nothing to check"
    return {p for p in found if p}


# ---------------------------------------------------------------------------------------- config


def test_config_json(test_env: dict[str, str]) -> None:
    proc = run("config", "--json")
    assert proc.returncode == 0, proc.stderr
    view: dict[str, Any] = json.loads(proc.stdout)
    assert {"site", "mqtt_url", "db_url", "api_url"} <= set(view)
    assert view["site"] == os.environ.get("BONDWATCH_SITE", "ordos-czb")
    db_url = urlsplit(view["db_url"])
    expected = urlsplit(test_env["BONDWATCH_DB_URL"])
    assert (db_url.scheme, db_url.username, db_url.hostname, db_url.port, db_url.path) == (
        expected.scheme,
        expected.username,
        expected.hostname,
        expected.port,
        expected.path,
    )
    assert db_url.password == "***"
    assert urlsplit(view["mqtt_url"]).password == "***"
    assert view["api_url"].startswith("http")


def test_config_never_prints_a_password(test_env: dict[str, str]) -> None:
    for args in (("config", "--json"), ("config",)):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr
        for secret in passwords(test_env):
            assert secret not in proc.stdout
            assert secret not in proc.stderr


def test_config_bad_site_refused(test_env: dict[str, str]) -> None:
    proc = run("config", "--json", BONDWATCH_SITE="Bad_Site")
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "site" in proc.stderr
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------------------- stats


def test_stats_json_matches_the_database(db: psycopg.Connection[tuple[Any, ...]]) -> None:
    device = f"test-cli-{uuid.uuid4().hex[:8]}"
    for seq in range(3):
        db.execute(
            "INSERT INTO positions (ts, device_id, seq, lat, lon, fix) VALUES (now(), %s, %s, 39.6, 109.9, '3d')",
            (device, seq),
        )
    for seq in range(2):
        db.execute("INSERT INTO temperatures (ts, device_id, seq, temp_c) VALUES (now(), %s, %s, 4)", (device, seq))
    db.execute(
        "INSERT INTO rfid_reads (ts, device_id, seq, epc) VALUES (now(), %s, 0, '3034257BF7194E4000000001')", (device,)
    )
    db.execute(
        "INSERT INTO dead_letters (topic, payload, reason) VALUES (%s, %s, 'test')",
        (f"bw/v1/t/gps/{device}", b"\xff"),
    )

    proc = run("stats", "--json")
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)

    def count(table: str) -> int:
        row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])

    expected = {
        "readings": {"gps": count("positions"), "temp": count("temperatures"), "rfid": count("rfid_reads")},
        "dead_letters": count("dead_letters"),
    }
    assert stats == expected
    assert list(stats) == ["readings", "dead_letters"]
    assert sorted(stats["readings"]) == ["gps", "rfid", "temp"]
    assert all(type(n) is int for n in [*stats["readings"].values(), stats["dead_letters"]])
    assert stats["readings"]["gps"] >= 3 and stats["readings"]["temp"] >= 2
    assert stats["readings"]["rfid"] >= 1 and stats["dead_letters"] >= 1


# ----------------------------------------------------------------------------------------- token


def test_token_create_stores_only_the_hash(db: psycopg.Connection[tuple[Any, ...]]) -> None:
    name = f"test-cli-{uuid.uuid4().hex[:8]}"
    proc = run("token", "create", "--role", "admin", "--name", name)
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert token.startswith("bw_")
    assert "\n" not in token and len(token) >= 40, "one token of 256 random bits on one line"

    rows = db.execute(
        "SELECT role, name, token_hash, revoked_at FROM api_tokens WHERE token_hash = %s",
        (hashlib.sha256(token.encode()).digest(),),
    ).fetchall()
    assert rows == [("admin", name, hashlib.sha256(token.encode()).digest(), None)]

    secret = token.removeprefix("bw_")
    leaks = db.execute(
        "SELECT count(*) FROM api_tokens t "
        "WHERE strpos(t::text, %s) > 0 OR strpos(encode(t.token_hash, 'escape'), %s) > 0",
        (secret, secret),
    ).fetchone()
    assert leaks == (0,), "the plaintext token is stored"


def test_token_create_twice_gives_different_tokens(db: psycopg.Connection[tuple[Any, ...]]) -> None:
    first, second = (run("token", "create", "--role", "viewer").stdout.strip() for _ in range(2))
    assert first.startswith("bw_") and second.startswith("bw_") and first != second


@pytest.mark.parametrize("role", ["root", "Admin"])
def test_token_create_unknown_role_refused(db: psycopg.Connection[tuple[Any, ...]], role: str) -> None:
    before = db.execute("SELECT count(*) FROM api_tokens").fetchone()
    proc = run("token", "create", "--role", role)
    assert proc.returncode != 0
    assert "bw_" not in proc.stdout
    assert "role must be viewer, dispatcher or admin" in flat(proc.stderr)
    assert db.execute("SELECT count(*) FROM api_tokens").fetchone() == before


# ------------------------------------------------------------------------------- services, db


def test_services_status(test_env: dict[str, str]) -> None:
    proc = run("services", "status", "--json")
    assert proc.returncode == 0, proc.stderr
    states = {s["name"]: s for s in json.loads(proc.stdout)}
    assert set(states) == {"postgresql", "mosquitto"}
    assert all(s["running"] and s["pid"] for s in states.values())

    table = run("services", "status")
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("running") == 2


def test_db_migrate_applies_nothing_again(test_env: dict[str, str]) -> None:
    proc = run("db", "migrate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "applied 0 migration(s)"
