"""An alert's life through the API and on MQTT: escalation while nobody answers, acknowledgement, resolution."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bondwatch.settings import CommonSettings
from ingest.service import IngestService
from rules.service import RulesService
from simulators.scenario import SCENARIO_DIR, load_scenario, run
from tests.conftest import wait_for
from tests.rules.conftest import Outbox, rules_settings, start_rules

ESCALATE_S = 1.5


@pytest.fixture
def quick_rules(site: str, test_env: dict[str, str]) -> Iterator[RulesService]:
    service = start_rules(rules_settings(site, rules_escalate_after_s=ESCALATE_S))
    yield service
    service.stop()


def events(outbox: Outbox, subject: str) -> list[str]:
    return [m["event"] for m in outbox.alerts(subject, "bonded_exit")]


def test_escalate_acknowledge_resolve(
    site: str, ingest: IngestService, quick_rules: RulesService, outbox: Outbox, api: TestClient
) -> None:
    s = load_scenario(Path(SCENARIO_DIR / "bonded_exit.toml"), prefix=f"{site}-")
    run(s, CommonSettings(site=site), api, "backlog")
    (exp,) = s.expect
    vehicle = exp.subject_id
    wait_for(
        lambda: events(outbox, vehicle).count("escalated") >= 2, timeout=15, state=lambda: str(events(outbox, vehicle))
    )
    (alert,) = api.get("/alerts", params={"subject_id": vehicle, "status": "open"}).json()
    assert alert["type"] == "bonded_exit" and alert["severity"] == "critical"
    assert alert["escalation_level"] >= 2 and alert["escalated_at"] is not None
    assert "保税运输车辆" in alert["details"]["message_zh"] and alert["details"]["message_en"]

    acked = api.post(f"/alerts/{alert['id']}/ack", json={"note": "已联系司机 / driver called"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["acked_by"]
    wait_for(lambda: "acknowledged" in events(outbox, vehicle), timeout=10)
    escalations = events(outbox, vehicle).count("escalated")
    time.sleep(ESCALATE_S * 2)
    assert events(outbox, vehicle).count("escalated") == escalations, "no escalation once acknowledged"
    heard: dict[str, Any] = outbox.alerts(vehicle, "bonded_exit")[-1]
    assert heard["status"] == "acknowledged" and heard["note"] == "已联系司机 / driver called"
    assert heard["actor"] == acked.json()["acked_by"]

    resolved = api.post(f"/alerts/{alert['id']}/resolve", json={"note": "货物已返回 / goods returned"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "cleared"
    wait_for(lambda: "resolved" in events(outbox, vehicle), timeout=10)
    assert events(outbox, vehicle)[0] == "opened" and events(outbox, vehicle).count("opened") == 1
    assert api.get("/alerts", params={"subject_id": vehicle, "status": "open"}).json() == []
