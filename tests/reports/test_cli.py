"""`bondwatch report monthly`: the same stored report as the API, to a file or standard output."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import psycopg
from typer.testing import CliRunner, Result

from bondwatch.cli import app
from simulators.history import HistorySummary
from tests.api.conftest import Api
from tests.reports.conftest import MONTH

RUNNER = CliRunner()


def _run(*args: str) -> Result:
    # In this process, with the test session's BONDWATCH_* variables (test_env): the test database.
    return RUNNER.invoke(app, ["report", "monthly", *args])


def test_cli_writes_the_report_the_api_serves(
    seeded: HistorySummary, viewer: Api, db: psycopg.Connection[tuple[Any, ...]], tmp_path: Path, forget_month: None
) -> None:
    out = _run("--month", str(MONTH), "--format", "json", "--out", "-")
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout_bytes)
    assert report["month"] == str(MONTH) and report["period"]["complete"] is True
    digest = hashlib.sha256(out.stdout_bytes).hexdigest()
    assert digest in out.stderr
    # Complete month: stored by the command, served as is by the API.
    resp = viewer.get(f"/reports/monthly?month={MONTH}&format=json")
    assert resp.headers["x-report-sha256"] == digest and resp.content == out.stdout_bytes
    row = db.execute(
        "SELECT stored_by FROM monthly_reports WHERE month = %s AND format = 'json'", (MONTH.first_day,)
    ).fetchone()
    assert row == ("cli",)

    csv_out = _run("--month", str(MONTH), "--format", "csv", "--out", str(tmp_path / "march.csv"))
    assert csv_out.exit_code == 0, csv_out.output
    assert (tmp_path / "march.csv").read_bytes().decode("utf-8-sig").startswith("section,period,subject")


def test_cli_refuses_bad_arguments(test_env: dict[str, str]) -> None:
    for args in (("--month", "2020-4"), ("--format", "xlsx"), ("--month", "2099-01")):
        out = _run(*args)
        assert out.exit_code == 2, (args, out.output)
