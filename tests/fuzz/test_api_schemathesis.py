"""schemathesis against the API's own OpenAPI document: no 5xx, answers that match what is documented.

The app is the real one (``api.app.create_app``, lifespan and pool included) on a database of its own,
migrated like the test database and dropped afterwards: the generated writes (geofences of any kind,
devices, vehicles...) must not reach the rules and API tests that share ``bondwatch_test_<pid>``.
Every operation is called as an admin (every route reachable) and as a viewer (writes get 403).

Checks: ``not_a_server_error``, ``response_schema_conformance`` and ``status_code_conformance`` on every
operation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app
from api.auth import Role, create_token
from api.settings import ApiSettings
from bondwatch.db.migrate import migrate
from bondwatch.settings import load_settings
from tests.fuzz.conftest import PROFILE

API_DB = f"bondwatch_apifuzz_{os.getpid()}"
# Examples per operation (32 operations) as an admin; a viewer gets 4/5 of them, no token 1/5 (docs/fuzzing.md).
EXAMPLES = {"ci": 8, "fuzz": 60}[PROFILE]
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


def _api_settings() -> ApiSettings:
    """The services' addresses (as test_env finds them), with this module's own database."""
    overrides: dict[str, Any] = {}
    if "api_rate_limit" in ApiSettings.model_fields:  # thousands of requests a minute from one token, on purpose
        overrides["api_rate_limit"] = False
    return load_settings(ApiSettings, **overrides).on_database(API_DB)


# The schema is read from the app without a request, at collection; the app runs in the tests, once its
# database exists. Requests go through FastAPI's TestClient (httpx) and schemathesis checks the answers:
# schemathesis' own pytest fixture loader does not run on pytest 9 (it sets Function._nodeid, gone in
# pytest 9), and its requests-based transport breaks on urllib3-future, which grafana-client's niquests
# installs in place of urllib3.
SETTINGS = _api_settings()
APP = create_app(SETTINGS)
# /alerts/stream is Server-Sent Events: an answer that never ends, nothing to generate for.
schema = schemathesis.openapi.from_dict(APP.openapi()).exclude(path="/api/v1/alerts/stream")


@pytest.fixture(scope="module")
def client(test_env: dict[str, str]) -> Iterator[TestClient]:
    server = SETTINGS.on_database("postgres")
    admin = server.db_admin_url or server.db_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {API_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {API_DB}")
    migrate(SETTINGS)
    with TestClient(APP) as test_client:  # the lifespan opens the pool, as `bondwatch api` does
        yield test_client
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {API_DB} WITH (FORCE)")


@pytest.fixture(scope="module")
def api_headers(client: TestClient) -> dict[Role, dict[str, str]]:
    return {role: {"Authorization": f"Bearer {create_token(SETTINGS, role, f'fuzz-{role.value}')}"} for role in Role}


def call(client: TestClient, case: schemathesis.Case, headers: dict[str, str] | None = None) -> httpx.Response:
    """Send the case as schemathesis would (its serialization), through the TestClient; check the answer."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["content"] = json.dumps(kwargs.pop("json")).encode()
    elif isinstance(kwargs.get("data"), bytes | str):
        body["content"] = kwargs.pop("data")
    elif "data" in kwargs:
        body["data"] = kwargs.pop("data")
    if kwargs.get("cookies"):
        client.cookies = kwargs["cookies"]
    response = client.request(
        kwargs["method"], kwargs["url"], params=kwargs.get("params"), headers=kwargs.get("headers"), **body
    )
    client.cookies.clear()
    case.validate_response(response, checks=CHECKS, headers=kwargs.get("headers"))
    return response


API_FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a request to the real database; time per request is not the property here
    derandomize=PROFILE == "ci",
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)


@API_FUZZ
@schema.parametrize()
def test_api_as_admin(case: schemathesis.Case, client: TestClient, api_headers: dict[Role, dict[str, str]]) -> None:
    call(client, case, api_headers[Role.admin])


@settings(API_FUZZ, max_examples=EXAMPLES * 4 // 5)
@schema.parametrize()
def test_api_as_viewer(case: schemathesis.Case, client: TestClient, api_headers: dict[Role, dict[str, str]]) -> None:
    response = call(client, case, api_headers[Role.viewer])
    if case.method.upper() in ("PUT", "POST", "DELETE") and response.status_code < 400:
        # A viewer reads everything and changes nothing (acknowledging an alert needs a dispatcher).
        pytest.fail(f"a viewer's {case.method} {case.path} was answered {response.status_code}")


@settings(API_FUZZ, max_examples=max(3, EXAMPLES // 5))
@schema.parametrize()
def test_api_without_a_token(case: schemathesis.Case, client: TestClient) -> None:
    response = call(client, case)
    if not case.path.endswith("/health"):
        # Nothing without a token: 401, or refused before the token is looked at (405 for a method the path
        # does not have; 400/422 for a body that is not JSON: FastAPI reads the body first).
        assert response.status_code in (400, 401, 405, 422), (case.method, case.path, response.status_code)
