"""Fixtures of the API tests: the real app (lifespan and pool included) on the test database, and tokens.

The app and the tokens live for the whole session; every test names its rows with a fresh suffix
(:func:`uid`), so tests never see each other's data even though they share one database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, create_token
from api.settings import ApiSettings
from bondwatch.db.settings import DbSettings
from bondwatch.settings import load_settings

API = "/api/v1"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def client(test_env: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(load_settings(ApiSettings))
    # As a context manager, so the lifespan runs and opens the pool like `bondwatch api` does.
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def tokens(test_env: dict[str, str]) -> dict[Role, str]:
    settings = load_settings(DbSettings)
    return {role: create_token(settings, role, uid(f"test-{role.value}")) for role in Role}


@pytest.fixture(scope="session")
def headers(tokens: dict[Role, str]) -> dict[Role, dict[str, str]]:
    return {role: bearer(token) for role, token in tokens.items()}


class Api:
    """The client with a role's token; paths are relative to /api/v1."""

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        resp: httpx.Response = self.client.request(method, API + path, headers=self.headers, **kwargs)
        return resp

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, body: Any) -> httpx.Response:
        return self.request("PUT", path, json=body)

    def post(self, path: str, body: Any) -> httpx.Response:
        return self.request("POST", path, json=body)

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        """The request must succeed; returns the decoded body (None for 204)."""
        resp = self.request(method, path, json=body) if body is not None else self.request(method, path)
        assert resp.is_success, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.status_code != 204 else None


@pytest.fixture(scope="session")
def admin(client: TestClient, headers: dict[Role, dict[str, str]]) -> Api:
    return Api(client, headers[Role.admin])


@pytest.fixture(scope="session")
def dispatcher(client: TestClient, headers: dict[Role, dict[str, str]]) -> Api:
    return Api(client, headers[Role.dispatcher])


@pytest.fixture(scope="session")
def viewer(client: TestClient, headers: dict[Role, dict[str, str]]) -> Api:
    return Api(client, headers[Role.viewer])
