"""API tokens (hashed, revocable), CORS and rate limits, on the real app and the test database."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, create_token
from api.security import TokenBuckets
from api.settings import ApiSettings
from bondwatch.db.settings import DbSettings
from bondwatch.errors import SettingsError
from bondwatch.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
HMI = "https://hmi.zone.example"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_token(role: Role = Role.viewer) -> tuple[str, str]:
    name = f"test-sec-{uuid.uuid4().hex[:10]}"
    return create_token(load_settings(DbSettings), role, name), name


def app_client(**overrides: Any) -> TestClient:
    return TestClient(create_app(load_settings(ApiSettings, **overrides)))


@pytest.fixture(scope="module")
def client(test_env: dict[str, str]) -> Iterator[TestClient]:
    """The app as configured by default."""
    with app_client() as test_client:
        yield test_client


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    bondwatch = Path(sys.executable).with_name("bondwatch")
    return subprocess.run(
        [str(bondwatch), *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60, check=False
    )


# ------------------------------------------------------------------------------------------ tokens


def test_only_the_hash_of_a_token_is_stored(test_env: dict[str, str], db: psycopg.Connection[Any]) -> None:
    token, name = new_token()
    row = db.execute("SELECT token_hash FROM api_tokens WHERE name = %s", (name,)).fetchone()
    assert row is not None and bytes(row[0]) == hashlib.sha256(token.encode()).digest()
    dump = db.execute("SELECT row_to_json(t)::text FROM api_tokens t WHERE name = %s", (name,)).fetchone()
    assert dump is not None and token not in dump[0] and token.removeprefix("bw_") not in dump[0]


def test_revoke_by_name_then_401(client: TestClient) -> None:
    token, name = new_token(Role.admin)
    assert client.get(API + "/devices", headers=bearer(token)).status_code == 200
    proc = cli("token", "revoke", name)
    assert proc.returncode == 0, proc.stderr
    assert f"({name})" in proc.stdout
    resp = client.get(API + "/devices", headers=bearer(token))
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert cli("token", "revoke", name).returncode == 1  # nothing active of that name is left


def test_revoke_by_id_and_list(client: TestClient, db: psycopg.Connection[Any]) -> None:
    token, name = new_token(Role.dispatcher)
    other, other_name = new_token(Role.dispatcher)
    row = db.execute("SELECT id FROM api_tokens WHERE name = %s", (name,)).fetchone()
    assert row is not None
    proc = cli("token", "revoke", str(row[0]))
    assert proc.returncode == 0, proc.stderr
    assert client.get(API + "/alerts", headers=bearer(token)).status_code == 401
    assert client.get(API + "/alerts", headers=bearer(other)).status_code == 200  # only that one
    listed = cli("token", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {t["name"]: t for t in json.loads(listed.stdout)}
    assert by_name[name]["revoked_at"] and not by_name[other_name]["revoked_at"]
    assert token not in listed.stdout and other not in listed.stdout
    assert "hash" not in listed.stdout


def test_revoke_unknown_token_fails(test_env: dict[str, str]) -> None:
    proc = cli("token", "revoke", f"nobody-{uuid.uuid4().hex[:6]}")
    assert proc.returncode == 1 and "no active token" in proc.stderr


# -------------------------------------------------------------------------------------------- CORS


def test_no_cors_headers_by_default(client: TestClient) -> None:
    token, _ = new_token()
    resp = client.get(API + "/devices", headers={**bearer(token), "Origin": HMI})
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.startswith("access-control-")]
    preflight = client.options(API + "/devices", headers={"Origin": HMI, "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_for_listed_origins_only(test_env: dict[str, str]) -> None:
    token, _ = new_token()
    with app_client(api_cors_origins=[HMI]) as client:
        resp = client.get(API + "/devices", headers={**bearer(token), "Origin": HMI})
        assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == HMI
        assert "access-control-allow-credentials" not in resp.headers
        preflight = client.options(
            API + "/release-notes",
            headers={
                "Origin": HMI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == HMI
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        evil = client.get(API + "/devices", headers={**bearer(token), "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
        refused = client.options(
            API + "/devices", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


def test_cors_origins_setting(monkeypatch: pytest.MonkeyPatch, test_env: dict[str, str]) -> None:
    monkeypatch.setenv("BONDWATCH_API_CORS_ORIGINS", f"{HMI}, http://127.0.0.1:3000/")
    assert load_settings(ApiSettings).api_cors_origins == [HMI, "http://127.0.0.1:3000"]
    for bad in ("*", "hmi.zone.example", "https://hmi.zone.example/app", "ftp://x"):
        monkeypatch.setenv("BONDWATCH_API_CORS_ORIGINS", bad)
        with pytest.raises(SettingsError, match="api_cors_origins"):
            load_settings(ApiSettings)


# ------------------------------------------------------------------------------------- rate limits


def test_token_bucket() -> None:
    buckets = TokenBuckets(rate=2, burst=3)
    for _ in range(3):
        assert buckets.wait("k", 100.0) == 0
        buckets.take("k")
    assert buckets.wait("k", 100.0) == pytest.approx(0.5)
    assert buckets.wait("other", 100.0) == 0  # keys are independent
    assert buckets.wait("k", 100.5) == 0  # refilled at 2/s
    buckets.take("k")
    assert buckets.wait("k", 200.0) == 0 and buckets._buckets["k"].tokens == 3  # never above the burst


def test_token_bucket_forgets_the_least_recent_keys() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        buckets.wait(key, 0.0)
    assert list(buckets._buckets) == ["b", "c"]


def test_per_token_limit_gives_429_with_retry_after(test_env: dict[str, str]) -> None:
    token, _ = new_token()
    other, _ = new_token()
    with app_client(api_rate_per_token=1, api_burst_per_token=3, api_rate_per_ip=0) as client:
        codes = [client.get(API + "/devices", headers=bearer(token)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        refused = client.get(API + "/devices", headers=bearer(token))
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "retry after" in refused.json()["detail"]
        assert client.get(API + "/devices", headers=bearer(other)).status_code == 200  # per token
        assert client.get("/metrics").status_code == 200  # only /api/ is limited
        assert "bondwatch_api_rate_limited_total" in client.get("/metrics").text
        time.sleep(1.1)
        assert client.get(API + "/devices", headers=bearer(token)).status_code == 200  # refilled


def test_per_address_limit_covers_garbage_tokens(test_env: dict[str, str]) -> None:
    with app_client(api_rate_per_ip=1, api_burst_per_ip=5, api_rate_per_token=0) as client:
        codes = [client.get(API + "/devices", headers=bearer(f"bw_guess-{i}")).status_code for i in range(6)]
        assert codes == [401] * 5 + [429]
        assert client.get(API + "/health").status_code == 429  # the address, whatever it asks


def test_429_carries_cors_headers(test_env: dict[str, str]) -> None:
    token, _ = new_token()
    with app_client(api_cors_origins=[HMI], api_rate_per_token=1, api_burst_per_token=1) as client:
        assert client.get(API + "/devices", headers={**bearer(token), "Origin": HMI}).status_code == 200
        refused = client.get(API + "/devices", headers={**bearer(token), "Origin": HMI})
        assert refused.status_code == 429 and refused.headers["access-control-allow-origin"] == HMI


def test_rate_limits_can_be_turned_off(test_env: dict[str, str]) -> None:
    token, _ = new_token()
    with app_client(api_rate_limit=False, api_rate_per_token=1, api_burst_per_token=1) as client:
        assert {client.get(API + "/health", headers=bearer(token)).status_code for _ in range(5)} == {200}


def test_default_limits_are_generous(test_env: dict[str, str]) -> None:
    settings = load_settings(ApiSettings)
    assert settings.api_rate_limit and settings.api_rate_per_token >= 50 and settings.api_burst_per_token >= 500
    assert settings.api_rate_per_ip >= settings.api_rate_per_token


# ------------------------------------------------------------------------------------------ roles


def test_every_endpoint_is_in_the_role_matrix_or_open_to_viewers(client: TestClient) -> None:
    """tests/api/test_roles.py holds the matrix; endpoints added since are reads and must admit a viewer.

    Every write must be in the matrix (it says which role it needs); a read outside it must answer a
    viewer with anything but 401/403. (No token: 401 for all, test_roles.test_every_endpoint_needs_a_token.)
    """
    import re

    from tests.api.test_roles import ENDPOINTS, PUBLIC

    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    operations = {(m.upper(), p.removeprefix(API)) for p, ops in paths.items() for m in ops}
    outside = operations - {(e.method, e.route) for e in ENDPOINTS} - PUBLIC - {("GET", "/alerts/stream")}
    writes = sorted(op for op in outside if op[0] != "GET")
    assert writes == [], f"writes missing from the role matrix in tests/api/test_roles.py: {writes}"
    token, _ = new_token(Role.viewer)
    word = "ABCD" * 6  # fits every path parameter's pattern
    for _, route in sorted(outside):
        resp = client.get(API + re.sub(r"\{[^}]+\}", word, route), headers=bearer(token))
        assert resp.status_code not in (401, 403), f"GET {route} as viewer: {resp.status_code} {resp.text}"
