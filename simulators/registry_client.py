"""An HTTP client of the platform's API with a fresh admin token, for simulators that write the registry."""

from __future__ import annotations

import httpx

from bondwatch.settings import CommonSettings


def admin_client(settings: CommonSettings, purpose: str) -> httpx.Client:
    """``{api_url}/api/v1`` with a new admin token named after ``purpose`` (needs database access)."""
    from api.auth import Role, create_token
    from bondwatch.db.settings import DbSettings
    from bondwatch.settings import load_settings

    token = create_token(load_settings(DbSettings), Role.admin, purpose)
    return httpx.Client(base_url=f"{settings.api_url}/api/v1", headers={"Authorization": f"Bearer {token}"})
