"""Gates through the API: a gate's passages with their filters, and the list of gates with their last day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.api import bodies
from tests.api.bodies import ENGINE_SITE, insert_passage
from tests.api.conftest import Api, uid

Db = psycopg.Connection[tuple[Any, ...]]
HOUR = timedelta(hours=1)
PASSAGE_FIELDS = {
    "id",
    "site",
    "gate_id",
    "direction",
    "vehicle_id",
    "vehicle_epc",
    "epcs",
    "cargo_epcs",
    "missing_epcs",
    "reads",
    "readers",
    "first_read_at",
    "last_read_at",
    "decided_at",
    "decision",
    "reasons",
    "release_note_id",
    "published_at",
}


@pytest.fixture
def gate(db: Db) -> tuple[str, dict[str, str], datetime]:
    """A gate whose readers saw: out/pass 1 h ago, out/hold 2 h ago, in 3 h ago, out/pass 30 h ago."""
    gate_id = uid("gate")
    now = datetime.now(UTC)
    passages = {
        "pass": insert_passage(db, gate_id, now - 1 * HOUR, "out", "pass", vehicle_id=uid("veh")),
        "hold": insert_passage(db, gate_id, now - 2 * HOUR, "out", "hold", vehicle_id=uid("veh")),
        "in": insert_passage(db, gate_id, now - 3 * HOUR, "in", None),
        "old": insert_passage(db, gate_id, now - 30 * HOUR, "out", "pass"),
    }
    insert_passage(db, uid("gate"), now - 1 * HOUR)  # another gate's, never listed here
    return gate_id, passages, now


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def test_passages_of_the_last_day_newest_first(viewer: Api, gate: tuple[str, dict[str, str], datetime]) -> None:
    gate_id, p, _ = gate
    rows = viewer.ok("GET", f"/gates/{gate_id}/passages")
    assert ids(rows) == [p["pass"], p["hold"], p["in"]]
    assert set(rows[0]) == PASSAGE_FIELDS
    hold = rows[1]
    assert hold["gate_id"] == gate_id
    assert hold["direction"] == "out" and hold["decision"] == "hold"
    assert hold["reasons"] == [{"code": "no_release_note", "vehicle_id": hold["vehicle_id"]}]
    assert hold["epcs"] == [hold["vehicle_epc"], *hold["cargo_epcs"]]
    assert hold["missing_epcs"] == []
    assert hold["site"] == ENGINE_SITE
    assert hold["reads"] == 14
    assert hold["readers"] == [f"{gate_id}-r1", f"{gate_id}-r2"]
    for field in ("first_read_at", "last_read_at", "decided_at"):
        assert hold[field].endswith("+08:00"), hold[field]
    assert rows[2]["decision"] is None


def test_passage_filters(viewer: Api, gate: tuple[str, dict[str, str], datetime]) -> None:
    gate_id, p, now = gate

    def listed(**params: Any) -> list[str]:
        resp = viewer.get(f"/gates/{gate_id}/passages", params=params)
        assert resp.status_code == 200, resp.text
        return ids(resp.json())

    assert listed(since=(now - 48 * HOUR).isoformat()) == [p["pass"], p["hold"], p["in"], p["old"]]
    assert listed(since=(now - 48 * HOUR).isoformat(), until=(now - 2 * HOUR).isoformat()) == [p["in"], p["old"]]
    assert listed(until=(now - 1.5 * HOUR).isoformat()) == [p["hold"], p["in"]]
    assert listed(direction="in") == [p["in"]]
    assert listed(direction="out") == [p["pass"], p["hold"]]
    assert listed(decision="hold") == [p["hold"]]
    assert listed(decision="pass", since=(now - 48 * HOUR).isoformat()) == [p["pass"], p["old"]]
    assert listed(limit=1) == [p["pass"]]
    assert viewer.ok("GET", f"/gates/{uid('gate')}/passages") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"direction": "sideways"}, "direction"),
        ({"decision": "maybe"}, "decision"),
        ({"since": "2026-11-25T10:00:00"}, "since"),
        ({"until": "tomorrow"}, "until"),
        ({"limit": 5001}, "limit"),
        ({"since": "2026-11-25T10:00:00+08:00", "until": "2026-11-25T09:00:00+08:00"}, "until"),
    ],
)
def test_passages_reject_bad_filters(viewer: Api, params: dict[str, Any], field: str) -> None:
    resp = viewer.get(f"/gates/{uid('gate')}/passages", params=params)
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["detail"]


def test_gates_list_registered_and_heard_of_gates(
    viewer: Api, admin: Api, db: Db, gate: tuple[str, dict[str, str], datetime]
) -> None:
    gate_id, _, now = gate
    quiet = bodies.register_geofence(admin, bodies.polygon(kind="gate", name="North gate"))
    busy = bodies.register_geofence(admin, bodies.polygon(kind="gate", name="South gate"))
    insert_passage(db, busy, now - 5 * HOUR, "in", None)
    not_a_gate = bodies.register_geofence(admin)
    gates = {g["gate_id"]: g for g in viewer.ok("GET", "/gates")}
    assert not_a_gate not in gates
    assert gates[quiet] == {
        "gate_id": quiet,
        "name": "North gate",
        "passages_in_24h": 0,
        "passages_out_24h": 0,
        "holds_24h": 0,
        "last_passage_at": None,
    }
    assert gates[busy]["name"] == "South gate"
    assert (gates[busy]["passages_in_24h"], gates[busy]["passages_out_24h"]) == (1, 0)
    heard_of = gates[gate_id]
    assert heard_of["name"] is None
    # The passage 30 h ago is outside the day's counts but not forgotten.
    assert (heard_of["passages_in_24h"], heard_of["passages_out_24h"], heard_of["holds_24h"]) == (1, 2, 1)
    assert heard_of["last_passage_at"].endswith("+08:00")
    assert datetime.fromisoformat(heard_of["last_passage_at"]) == now - HOUR
    assert list(gates) == sorted(gates)
