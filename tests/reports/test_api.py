"""GET /api/v1/reports/monthly: parameters, roles, stored versus generated."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from reports.period import Month, previous_month
from reports.settings import ReportSettings
from simulators.history import HistorySummary
from tests.api.conftest import API, Api
from tests.reports.conftest import MONTH


@pytest.mark.parametrize(
    "query",
    [
        "month=2025-13",
        "month=2025-3",
        "month=March",
        "month=1999-12",
        "month=2099-01",  # has not begun
        "format=xlsx",
        "month=2025-03&format=PDF",
    ],
)
def test_bad_month_or_format_is_422(viewer: Api, query: str) -> None:
    resp = viewer.get(f"/reports/monthly?{query}")
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"]


def test_needs_a_token(client: TestClient) -> None:
    resp = client.get(API + "/reports/monthly?month=2025-03")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"


def test_viewer_gets_the_seeded_month_the_same_twice(
    seeded: HistorySummary, viewer: Api, month_report: dict[str, Any], forget_month: None
) -> None:
    first = viewer.get(f"/reports/monthly?month={MONTH}")  # format defaults to json
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    assert first.headers["x-report-stored"] == "true"  # complete month: kept on first request
    body = first.json()
    assert body["month"] == str(MONTH)
    # The figures are the ones gathered directly (only the generation time differs).
    assert body["summary"] == month_report["summary"]
    assert body["fleet"]["totals"] == month_report["fleet"]["totals"]
    second = viewer.get(f"/reports/monthly?month={MONTH}&format=json")
    assert second.content == first.content
    assert second.headers["x-report-sha256"] == hashlib.sha256(first.content).hexdigest()
    assert second.headers["etag"] == f'"{second.headers["x-report-sha256"]}"'

    csv_resp = viewer.get(f"/reports/monthly?month={MONTH}&format=csv")
    assert csv_resp.status_code == 200
    assert csv_resp.headers["content-type"].startswith("text/csv")
    assert f"bondwatch-monthly-report-{MONTH}.csv" in csv_resp.headers["content-disposition"]
    # Issued the same way, so the CSV was generated from the same figures as the JSON.
    assert str(body["fleet"]["totals"]["km"]) in csv_resp.content.decode("utf-8-sig")


def test_month_in_progress_is_generated_not_kept(
    viewer: Api, db: psycopg.Connection[tuple[Any, ...]], report_settings: ReportSettings
) -> None:
    month = Month.of(datetime.now(UTC), report_settings.zone)
    resp = viewer.get(f"/reports/monthly?month={month}&format=json")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-report-stored"] == "false"
    body = json.loads(resp.content)
    assert body["period"]["complete"] is False
    assert db.execute("SELECT 1 FROM monthly_reports WHERE month = %s", (month.first_day,)).fetchone() is None


def test_default_month_is_the_previous_one(viewer: Api, report_settings: ReportSettings) -> None:
    resp = viewer.get("/reports/monthly")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-report-month"] == str(previous_month(datetime.now(UTC), report_settings.zone))
