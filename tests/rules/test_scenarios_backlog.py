"""Every bundled scenario judged on the readings' own time, played as a backlog through MQTT into ingest and rules.

The platform must raise exactly the scenario's ``[[expect]]``: open from ``opens_after_s`` (never before), within
``within_s``, once (one row, one ``opened`` event on MQTT), cleared at ``clears_after_s`` when given; none of its
``[[no_alert]]``; and every ``[[decisions]]`` on the gate's decision topic with the reasons naming the tags.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from bondwatch.settings import CommonSettings
from edge.protocols.epc import pure_identity_uri
from ingest.service import IngestService
from rules.service import RulesService
from simulators.scenario import RunSummary, Scenario, bundled, load_scenario, run
from tests.conftest import wait_for
from tests.rules.conftest import Outbox

TS_JUDGED = [p for p in bundled() if not load_scenario(p).live_only]


def alert_rows(db: psycopg.Connection[Any], subjects: set[str]) -> list[dict[str, Any]]:
    cur = db.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM alerts WHERE subject_id = ANY(%s) ORDER BY id", (sorted(subjects),)).fetchall()


def subjects_of(s: Scenario) -> set[str]:
    return set(s.registered("devices")) | set(s.registered("vehicles"))


def check_expectations(s: Scenario, summary: RunSummary, rows: list[dict[str, Any]], outbox: Outbox) -> None:
    base = summary.base
    found = {(r["type"], r["subject_id"]) for r in rows}
    expected = {(e.type, e.subject_id) for e in s.expect}
    assert found == expected, f"raised {sorted(found)}, expected {sorted(expected)}"
    for exp in s.expect:
        (row,) = [r for r in rows if (r["type"], r["subject_id"]) == (exp.type, exp.subject_id)]
        opened = (row["opened_at"] - base).total_seconds()
        assert exp.opens_after_s <= opened <= exp.opens_after_s + exp.within_s, f"{exp.type} opened at {opened} s"
        assert row["severity"] == exp.severity and row["subject_kind"] == exp.subject_kind
        for key, value in exp.details.items():
            assert row["details"].get(key) == value, f"{exp.type}: details.{key} = {row['details'].get(key)!r}"
        events = [m["event"] for m in outbox.alerts(exp.subject_id, exp.type)]
        assert events.count("opened") == 1, f"{exp.type}: published {events}"
        if exp.clears_after_s is not None:
            assert row["status"] == "cleared", f"{exp.type} is {row['status']}"
            assert row["cleared_at"] == base + timedelta(seconds=exp.clears_after_s)
            assert events == ["opened", "cleared"]
        elif exp.type in ("bonded_exit", "gate_hold"):
            assert row["status"] == "active", "an incident stays open until a person resolves it"
        elif row["cleared_at"] is not None:  # the scenario leaves clearing to the rule (low_soc's hysteresis)
            assert row["cleared_at"] > row["opened_at"] and events == ["opened", "cleared"]
    for no in s.no_alert:
        assert (no.type, no.subject_id) not in found


def check_decisions(s: Scenario, outbox: Outbox) -> None:
    for d in s.decisions:
        heard = [m.body for m in outbox.decisions(d.gate_id) if m.body["vehicle_id"] == d.vehicle_id]
        assert len(heard) == 1, f"decisions for {d.vehicle_id}: {heard}; all: {[m.body for m in outbox.decisions()]}"
        (body,) = heard
        assert (body["decision"], body["release_note_id"]) == (d.decision, d.release_note_id)
        text = " ".join(body["reasons"]).lower()
        for epc in d.reason_epcs:
            assert epc.lower() in text and (pure_identity_uri(epc) or "").lower() in text
        for reason in d.reasons:
            assert reason.lower() in text
        if d.decision == "pass":
            assert body["reasons"] == []


@pytest.mark.parametrize("path", TS_JUDGED, ids=[p.stem for p in TS_JUDGED])
def test_backlog_raises_what_the_scenario_expects(
    path: Path,
    site: str,
    ingest: IngestService,
    rules: RulesService,
    outbox: Outbox,
    api: TestClient,
    db: psycopg.Connection[Any],
) -> None:
    s = load_scenario(path, prefix=f"{site}-")
    summary = run(s, CommonSettings(site=site), api, "backlog")
    subjects = subjects_of(s)

    def settled() -> bool:
        rows = alert_rows(db, subjects)
        done = len({(r["type"], r["subject_id"]) for r in rows}) >= len(s.expect)
        cleared = all(
            any(r["type"] == e.type and r["status"] == "cleared" for r in rows)
            for e in s.expect
            if e.clears_after_s is not None
        )
        return done and cleared and len(outbox.decisions()) >= len(s.decisions)

    wait_for(settled, timeout=30, state=lambda: f"{alert_rows(db, subjects)} {outbox.messages}")
    wait_for(lambda: len(outbox.alerts()) >= len(s.expect), timeout=10)
    rows = alert_rows(db, subjects)
    check_expectations(s, summary, rows, outbox)
    check_decisions(s, outbox)
    check_api(api, rows)


def check_api(api: TestClient, rows: list[dict[str, Any]]) -> None:
    """The API tells dispatchers what the database holds: the same alerts, states and times (+08:00)."""
    for row in rows:
        listed = api.get("/alerts", params={"subject_id": row["subject_id"], "type": row["type"]}).json()
        (alert,) = [a for a in listed if a["id"] == row["id"]]
        assert (alert["status"], alert["severity"], alert["subject_kind"]) == (
            row["status"],
            row["severity"],
            row["subject_kind"],
        )
        assert datetime.fromisoformat(alert["opened_at"]) == row["opened_at"] and alert["opened_at"].endswith("+08:00")
        assert alert["details"]["message_zh"] and alert["details"]["message_en"]
        assert api.get(f"/alerts/{row['id']}").json()["events"][0]["event"] == "opened"
