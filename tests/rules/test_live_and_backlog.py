"""Live and buffered data give the same alerts, and silence is judged on the platform's clock.

A short test-only scenario (tests/rules/scenarios/short_mix.toml, limits of seconds instead of minutes) raises
every alert type. It is played live (in real time) and, at the same moment under another prefix, as a backlog
(everything at once, stamped as it happened). Alerts judged on the readings' ts must come out identical, to the
millisecond, relative to each run's scenario time 0; the silence alerts (``sensor_offline``, ``gps_lost``) open
in the live run when the limits run out on the platform's clock.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from bondwatch.contract.alerts import SILENCE_ALERTS
from bondwatch.settings import CommonSettings
from ingest.service import IngestService
from rules.service import RulesService
from simulators.scenario import RunSummary, load_scenario, run
from tests.conftest import wait_for
from tests.rules.conftest import Outbox
from tests.rules.test_scenarios_backlog import alert_rows, check_decisions, check_expectations, subjects_of

SHORT_MIX = Path(__file__).parent / "scenarios" / "short_mix.toml"


def relative(rows: list[dict[str, Any]], summary: RunSummary, prefix: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    def since(value: Any) -> float | None:
        return None if value is None else round((value - summary.base).total_seconds(), 3)

    return {
        (r["type"], r["subject_id"].removeprefix(prefix)): (since(r["opened_at"]), since(r["cleared_at"]), r["status"])
        for r in rows
        if r["type"] not in SILENCE_ALERTS
    }


def test_live_and_backlog_agree(
    site: str,
    ingest: IngestService,
    rules: RulesService,
    outbox: Outbox,
    api: TestClient,
    db: psycopg.Connection[Any],
) -> None:
    live = load_scenario(SHORT_MIX, prefix=f"{site}-live-")
    backlog = load_scenario(SHORT_MIX, prefix=f"{site}-back-")
    settings = CommonSettings(site=site)
    summaries = {"backlog": run(backlog, settings, api, "backlog")}  # a second: then the live run, 40 s
    summaries["live"] = run(live, settings, api, "live")

    def silence_open() -> bool:
        rows = alert_rows(db, subjects_of(live))
        return sum(r["type"] in SILENCE_ALERTS for r in rows) >= 3

    wait_for(silence_open, timeout=15, state=lambda: str(alert_rows(db, subjects_of(live))))
    live_rows = alert_rows(db, subjects_of(live))
    back_rows = alert_rows(db, subjects_of(backlog))
    assert relative(live_rows, summaries["live"], live.prefix) == relative(
        back_rows, summaries["backlog"], backlog.prefix
    )
    check_expectations(live, summaries["live"], [r for r in live_rows if r["type"] not in SILENCE_ALERTS], outbox)
    check_expectations(backlog, summaries["backlog"], [r for r in back_rows if r["type"] not in SILENCE_ALERTS], outbox)
    check_decisions(live, outbox)
    check_decisions(backlog, outbox)
    # Silence, live: A's last reading at 29 s, B's at 22 s, Y's last valid fix at 8 s; limits 8 s.
    base = summaries["live"].base
    due = {
        ("sensor_offline", f"{live.prefix}mix-temp-a"): 37,
        ("sensor_offline", f"{live.prefix}mix-temp-b"): 30,
        ("gps_lost", f"{live.prefix}mix-trk-y"): 16,
    }
    for (type_, subject), at_s in due.items():
        (row,) = [r for r in live_rows if (r["type"], r["subject_id"]) == (type_, subject)]
        opened = (row["opened_at"] - base).total_seconds()
        assert at_s <= opened <= at_s + 1.0, f"{type_} {subject}: opened at {opened} s, due at {at_s} s"
        assert row["raised_at"] - base >= timedelta(seconds=at_s), "not raised before the limit ran out"
        assert [m["event"] for m in outbox.alerts(subject, type_)] == ["opened"]
