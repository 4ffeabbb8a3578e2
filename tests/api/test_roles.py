"""Role matrix: every endpoint × (no token, garbage token, viewer, dispatcher, admin).

Reads need viewer, registry writes need admin, issuing a release note and acknowledging or resolving
an alert need dispatcher. An allowed call is arranged so that it succeeds (its referenced rows exist,
its body is valid), which proves the role check lets it through rather than some other check turning
it away.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.auth import Role, create_token, principal
from bondwatch.db.settings import DbSettings
from bondwatch.settings import load_settings
from tests.api import bodies
from tests.api.conftest import API, Api, bearer, uid

Arrange = Callable[[Api], tuple[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # as the OpenAPI document names it, under /api/v1
    need: Role
    arrange: Arrange  # registers what the call refers to (as admin); returns (path, body)

    def __str__(self) -> str:
        return f"{self.method} {self.route}"


def _fixed(path: str, body: Any = None) -> Arrange:
    return lambda admin: (path, body)


def _release_note(admin: Api) -> tuple[str, Any]:
    note = bodies.release_note(bodies.register_vehicle(admin))
    admin.ok("POST", "/release-notes", note)
    return f"/release-notes/{note['id']}", None


def _registered_tag(admin: Api) -> tuple[str, Any]:
    path = f"/tags/{bodies.epc()}"
    admin.ok("PUT", path, bodies.tag())
    return path, None


def _active_alert(suffix: str = "", body: Any = None) -> Arrange:
    """A fresh active alert per call, so every allowed caller's ack or resolve has one to act on."""

    def arrange(admin: Api) -> tuple[str, Any]:
        # Alerts are the rules engine's to open; the API has no endpoint that creates one.
        with psycopg.connect(load_settings(DbSettings).db_url, autocommit=True) as conn:
            alert_id = bodies.insert_alert(conn)
        return f"/alerts/{alert_id}{suffix}", body

    return arrange


ENDPOINTS = [
    Endpoint("GET", "/geofences", Role.viewer, _fixed("/geofences")),
    Endpoint("POST", "/geofences", Role.admin, lambda a: ("/geofences", {**bodies.polygon(), "id": uid("gf")})),
    Endpoint(
        "GET", "/geofences/{fence_id}", Role.viewer, lambda a: (f"/geofences/{bodies.register_geofence(a)}", None)
    ),
    Endpoint("PUT", "/geofences/{fence_id}", Role.admin, lambda a: (f"/geofences/{uid('gf')}", bodies.corridor())),
    Endpoint(
        "DELETE", "/geofences/{fence_id}", Role.admin, lambda a: (f"/geofences/{bodies.register_geofence(a)}", None)
    ),
    Endpoint("GET", "/devices", Role.viewer, _fixed("/devices")),
    Endpoint("GET", "/devices/{device_id}", Role.viewer, lambda a: (f"/devices/{bodies.register_sensor(a)[0]}", None)),
    Endpoint(
        "PUT",
        "/devices/{device_id}",
        Role.admin,
        lambda a: (f"/devices/{uid('gps')}", {"kind": "gps", "name": "truck terminal"}),
    ),
    Endpoint("GET", "/profiles", Role.viewer, _fixed("/profiles")),
    Endpoint("GET", "/profiles/{name}", Role.viewer, lambda a: (f"/profiles/{bodies.register_sensor(a)[1]}", None)),
    Endpoint("PUT", "/profiles/{name}", Role.admin, lambda a: (f"/profiles/{uid('prof')}", bodies.profile())),
    Endpoint("GET", "/vehicles", Role.viewer, _fixed("/vehicles")),
    Endpoint("GET", "/vehicles/{vehicle_id}", Role.viewer, lambda a: (f"/vehicles/{bodies.register_vehicle(a)}", None)),
    Endpoint("PUT", "/vehicles/{vehicle_id}", Role.admin, lambda a: (f"/vehicles/{uid('veh')}", bodies.vehicle())),
    Endpoint(
        "GET",
        "/vehicles/{vehicle_id}/track",
        Role.viewer,
        lambda a: (f"/vehicles/{bodies.register_vehicle(a)}/track", None),
    ),
    Endpoint("GET", "/tags/{epc}", Role.viewer, _registered_tag),
    Endpoint("PUT", "/tags/{epc}", Role.admin, lambda a: (f"/tags/{bodies.epc()}", bodies.tag())),
    Endpoint("GET", "/release-notes", Role.viewer, _fixed("/release-notes")),
    Endpoint("GET", "/release-notes/{note_id}", Role.viewer, _release_note),
    Endpoint(
        "POST",
        "/release-notes",
        Role.dispatcher,
        lambda a: ("/release-notes", bodies.release_note(bodies.register_vehicle(a))),
    ),
    Endpoint("GET", "/sensors", Role.viewer, _fixed("/sensors")),
    Endpoint(
        "GET",
        "/sensors/{device_id}/readings",
        Role.viewer,
        lambda a: (f"/sensors/{bodies.register_sensor(a)[0]}/readings", None),
    ),
    Endpoint("GET", "/alerts", Role.viewer, _fixed("/alerts?status=open")),
    Endpoint("GET", "/alerts/{alert_id}", Role.viewer, _active_alert()),
    Endpoint("POST", "/alerts/{alert_id}/ack", Role.dispatcher, _active_alert("/ack", {"note": "on my way"})),
    Endpoint("POST", "/alerts/{alert_id}/resolve", Role.dispatcher, _active_alert("/resolve", {"note": "done"})),
    # GET /alerts/stream is not here: an allowed call never ends, and the test client reads a response
    # whole. test_alerts_api checks its 401 with the test client and its 200 against a real server.
    Endpoint("GET", "/gates", Role.viewer, _fixed("/gates")),
    Endpoint("GET", "/gates/{gate_id}/passages", Role.viewer, _fixed("/gates/gate-north/passages")),
    # A month with no data: quick to generate (and never stored, so every caller's request generates it).
    Endpoint("GET", "/reports/monthly", Role.viewer, _fixed("/reports/monthly?month=2020-03&format=json")),
    # A registered tag has a story even before any read (an unknown one would be 404).
    Endpoint("GET", "/trace/{epc}", Role.viewer, lambda a: (_registered_tag(a)[0].replace("/tags/", "/trace/"), None)),
]


CALLERS = ["no token", "garbage token", Role.viewer, Role.dispatcher, Role.admin]
PUBLIC = {("GET", "/health")}


def _caller_headers(caller: str | Role, headers: dict[Role, dict[str, str]]) -> dict[str, str]:
    if caller == "no token":
        return {}
    if caller == "garbage token":
        return bearer("bw_not-a-token-anyone-was-given")
    return headers[Role(caller)]


def _openapi_operations(client: TestClient) -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path.removeprefix(API)) for path, ops in paths.items() for method in ops}


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_role_matrix(
    endpoint: Endpoint, caller: str | Role, client: TestClient, admin: Api, headers: dict[Role, dict[str, str]]
) -> None:
    path, body = endpoint.arrange(admin)
    resp = client.request(endpoint.method, API + path, headers=_caller_headers(caller, headers), json=body)
    if not isinstance(caller, Role):
        assert resp.status_code == 401, resp.text
        assert resp.headers.get("www-authenticate") == "Bearer"
        assert resp.json()["detail"]
    elif caller.rank < endpoint.need.rank:
        assert resp.status_code == 403, resp.text
        assert endpoint.need.value in resp.json()["detail"]
    else:
        assert resp.is_success, f"{endpoint} as {caller}: {resp.status_code} {resp.text}"


def test_denied_write_changes_nothing(client: TestClient, admin: Api, viewer: Api) -> None:
    fence_id = bodies.register_geofence(admin)
    assert viewer.delete(f"/geofences/{fence_id}").status_code == 403
    assert viewer.put(f"/geofences/{fence_id}", bodies.polygon(name="Renamed")).status_code == 403
    assert admin.ok("GET", f"/geofences/{fence_id}")["properties"]["name"] == "Bonded zone"
    profile_name = uid("prof")
    assert viewer.put(f"/profiles/{profile_name}", bodies.profile()).status_code == 403
    assert admin.get(f"/profiles/{profile_name}").status_code == 404


def test_matrix_lists_only_real_endpoints(client: TestClient) -> None:
    operations = _openapi_operations(client)
    listed = {(e.method, e.route) for e in ENDPOINTS}
    assert listed <= operations, f"the matrix names endpoints the API lacks: {listed - operations}"
    assert len(listed) == len(ENDPOINTS)


def test_every_endpoint_needs_a_token(client: TestClient) -> None:
    """Also the endpoints added after this matrix was written: none of them may be open."""
    word = "ABCD" * 6  # fits every path parameter's pattern, an id as well as an EPC
    for method, route in sorted(_openapi_operations(client) - PUBLIC):
        path = re.sub(r"\{[^}]+\}", word, route)
        resp = client.request(method, API + path)
        assert resp.status_code == 401, f"{method} {route} answered {resp.status_code} without a token"
        assert resp.headers.get("www-authenticate") == "Bearer"


def test_malformed_authorization_header_is_401(client: TestClient, tokens: dict[Role, str]) -> None:
    for value in (f"Basic {tokens[Role.admin]}", "Bearer", "Bearer   ", tokens[Role.admin]):
        resp = client.get(API + "/devices", headers={"Authorization": value})
        assert resp.status_code == 401, value
        assert resp.headers.get("www-authenticate") == "Bearer"


def test_revoked_token_is_401(client: TestClient, db: psycopg.Connection[tuple[Any, ...]]) -> None:
    name = uid("revoked")
    token = create_token(load_settings(DbSettings), Role.admin, name)
    assert client.get(API + "/devices", headers=bearer(token)).status_code == 200
    db.execute("UPDATE api_tokens SET revoked_at = now() WHERE name = %s", (name,))
    resp = client.get(API + "/devices", headers=bearer(token))
    assert resp.status_code == 401
    assert resp.headers.get("www-authenticate") == "Bearer"


def test_health_needs_no_token(client: TestClient) -> None:
    resp = client.get(API + "/health")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ok"
    assert resp.json()["database"] == "ok"


def test_a_tokens_use_is_committed_before_the_request_goes_on(test_env: dict[str, str]) -> None:
    """Recording last_used_at must not keep the token's row locked for the rest of the request: a month's report
    or any long request would otherwise hold every other request made with the same token."""
    settings = load_settings(DbSettings)
    token = create_token(settings, Role.viewer, uid("lock-check"))

    request = SimpleNamespace(headers={"authorization": f"Bearer {token}"})  # what principal() reads of a request

    async def check() -> None:
        async with await psycopg.AsyncConnection.connect(settings.db_url) as conn:
            who = await principal(request, conn)  # type: ignore[arg-type]
            assert who.role is Role.viewer
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            with psycopg.connect(settings.db_url, autocommit=True) as other:
                other.execute("SET lock_timeout = '1s'")
                other.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (who.token_id,))

    asyncio.run(check())
