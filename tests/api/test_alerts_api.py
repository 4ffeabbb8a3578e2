"""Alerts through the API: listing and filters, one alert with its history, ack and resolve, the event stream.

Alerts are seeded the way the rules engine writes them (rows in alerts and alert_events); every test
gives its alerts a type or subject of its own, so the shared database's other alerts never count.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role, hash_token
from api.settings import ApiSettings
from bondwatch.settings import load_settings
from tests.api.bodies import ENGINE_SITE, insert_alert
from tests.api.conftest import API, Api, bearer, uid
from tests.conftest import wait_for

Db = psycopg.Connection[tuple[Any, ...]]
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONTRACT_FIELDS = {
    "id",
    "type",
    "severity",
    "status",
    "subject_kind",
    "subject_id",
    "opened_at",
    "updated_at",
    "cleared_at",
    "acked_by",
    "note",
    "details",
}


@pytest.fixture
def names(db: Db, tokens: dict[Role, str]) -> dict[Role, str]:
    """The name each role's token was created with: what acked_by and actor must say."""
    found = {}
    for role, token in tokens.items():
        row = db.execute("SELECT name FROM api_tokens WHERE token_hash = %s", (hash_token(token),)).fetchone()
        assert row is not None
        found[role] = str(row[0])
    return found


def ids(alerts: list[dict[str, Any]]) -> list[int]:
    return [a["id"] for a in alerts]


def events_of(db: Db, alert_id: int) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT id, event, actor, note, alert FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()


def event_sites(db: Db, alert_id: int) -> list[str]:
    rows = db.execute("SELECT site FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)).fetchall()
    return [str(r[0]) for r in rows]


# ---------------------------------------------------------------- listing


def test_list_filters(viewer: Api, db: Db) -> None:
    kind = uid("type")
    now = datetime.now(UTC)
    subject = uid("temp")
    critical = insert_alert(db, alert_type=kind, severity="critical", subject_id=subject)
    acked = insert_alert(db, alert_type=kind, status="acknowledged")
    two_days_ago = now - timedelta(days=2)
    cleared = insert_alert(db, alert_type=kind, status="cleared", severity="warning", updated_at=two_days_ago)
    minor = insert_alert(db, alert_type=kind, severity="minor")

    def listed(**params: Any) -> set[int]:
        resp = viewer.get("/alerts", params={"type": kind, **params})
        assert resp.status_code == 200, resp.text
        return set(ids(resp.json()))

    assert listed() == {critical, acked, cleared, minor}
    assert listed(status="active") == {critical, minor}
    assert listed(status="acknowledged") == {acked}
    assert listed(status="cleared") == {cleared}
    assert listed(status="open") == {critical, acked, minor}
    assert listed(severity="critical") == {critical}
    assert listed(since=(now - timedelta(days=1)).isoformat()) == {critical, acked, minor}
    # The same instant in another offset is the same filter.
    in_shanghai = (now - timedelta(days=1)).astimezone(SHANGHAI).isoformat()
    assert listed(since=in_shanghai) == {critical, acked, minor}
    assert len(listed(limit=2)) == 2
    assert ids(viewer.ok("GET", f"/alerts?subject_id={subject}")) == [critical]
    assert viewer.ok("GET", f"/alerts?type={uid('type')}") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "closed"}, "status"),
        ({"severity": "fatal"}, "severity"),
        ({"since": "2026-11-25T10:00:00"}, "since"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 5001}, "limit"),
    ],
)
def test_list_rejects_bad_filters(viewer: Api, params: dict[str, Any], field: str) -> None:
    resp = viewer.get("/alerts", params=params)
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["detail"]


def test_list_order_puts_what_needs_a_person_first(viewer: Api, db: Db) -> None:
    kind = uid("type")
    base = datetime.now(UTC) - timedelta(hours=3)
    cleared_critical = insert_alert(db, alert_type=kind, status="cleared", severity="critical", opened_at=base)
    acked_critical = insert_alert(db, alert_type=kind, status="acknowledged", severity="critical", opened_at=base)
    old_warning = insert_alert(db, alert_type=kind, severity="warning", opened_at=base)
    new_warning = insert_alert(db, alert_type=kind, severity="warning", opened_at=base + timedelta(hours=1))
    major = insert_alert(db, alert_type=kind, severity="major", opened_at=base)
    critical = insert_alert(db, alert_type=kind, severity="critical", opened_at=base - timedelta(hours=1))
    minor = insert_alert(db, alert_type=kind, severity="minor", opened_at=base)
    assert ids(viewer.ok("GET", f"/alerts?type={kind}")) == [
        critical,
        major,
        minor,
        new_warning,
        old_warning,
        acked_critical,
        cleared_critical,
    ]


def test_alert_object_has_the_contract_shape(viewer: Api, db: Db) -> None:
    subject = uid("temp")
    alert_id = insert_alert(db, subject_id=subject, note="door left open")
    (alert,) = viewer.ok("GET", f"/alerts?subject_id={subject}")
    assert set(alert) >= CONTRACT_FIELDS
    assert alert["id"] == alert_id
    assert alert["status"] == "active"
    assert alert["subject_kind"] == "device"
    assert alert["note"] == "door left open"
    assert alert["details"] == {"direction": "high", "peak": 9.5, "profile": "chilled"}
    assert alert["cleared_at"] is None and alert["acked_by"] is None
    for field in ("opened_at", "updated_at"):
        assert alert[field].endswith("+08:00"), alert[field]
    assert "events" not in alert


# ---------------------------------------------------------------- one alert


def test_get_alert_with_its_history(viewer: Api, dispatcher: Api, db: Db, names: dict[Role, str]) -> None:
    alert_id = insert_alert(db)
    dispatcher.ok("POST", f"/alerts/{alert_id}/ack", {"note": "driver called"})
    dispatcher.ok("POST", f"/alerts/{alert_id}/resolve", {"note": "back in range"})
    alert = viewer.ok("GET", f"/alerts/{alert_id}")
    assert alert["id"] == alert_id
    assert alert["status"] == "cleared"
    events = alert["events"]
    assert [e["event"] for e in events] == ["opened", "acknowledged", "resolved"]
    assert [e["actor"] for e in events] == [None, names[Role.dispatcher], names[Role.dispatcher]]
    assert [e["note"] for e in events] == [None, "driver called", "back in range"]
    assert events == sorted(events, key=lambda e: e["id"])
    assert set(events[0]) == {"id", "at", "event", "actor", "note"}
    assert events[1]["at"].endswith("+08:00")


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/ack"), ("POST", "/resolve")])
def test_unknown_alert_is_404(dispatcher: Api, method: str, suffix: str) -> None:
    resp = dispatcher.request(method, f"/alerts/{2**62}{suffix}")
    assert resp.status_code == 404, resp.text
    assert str(2**62) in resp.json()["detail"]


def test_alert_id_must_be_a_number(viewer: Api) -> None:
    resp = viewer.get("/alerts/not-a-number")
    assert resp.status_code == 422
    assert "alert_id" in resp.json()["detail"]


# ---------------------------------------------------------------- ack and resolve


def test_ack_records_who_and_the_event(dispatcher: Api, db: Db, names: dict[Role, str]) -> None:
    alert_id = insert_alert(db, note="raised by the engine")
    alert = dispatcher.ok("POST", f"/alerts/{alert_id}/ack", {"note": "on my way"})
    who = names[Role.dispatcher]
    assert alert["id"] == alert_id
    assert alert["status"] == "acknowledged"
    assert alert["acked_by"] == who
    assert alert["acked_at"].endswith("+08:00")
    assert alert["updated_at"] == alert["acked_at"]
    assert alert["note"] == "on my way"
    *_, (_, event, actor, note, snapshot) = events_of(db, alert_id)
    assert (event, actor, note) == ("acknowledged", who, "on my way")
    assert snapshot["status"] == "acknowledged"
    assert snapshot["acked_by"] == who
    stored = db.execute("SELECT status, acked_by, acked_at IS NOT NULL FROM alerts WHERE id = %s", (alert_id,))
    assert stored.fetchone() == ("acknowledged", who, True)
    assert event_sites(db, alert_id) == [ENGINE_SITE, ENGINE_SITE]


def test_events_of_an_alert_without_history_go_to_the_servers_site(dispatcher: Api, db: Db) -> None:
    """The relay of the site that raised an alert sends its later events; a hand-written alert has none."""
    alert_id = insert_alert(db, opened_event=False)
    dispatcher.ok("POST", f"/alerts/{alert_id}/ack")
    dispatcher.ok("POST", f"/alerts/{alert_id}/resolve")
    site = load_settings(ApiSettings).site
    assert event_sites(db, alert_id) == [site, site]


def test_second_ack_is_409_and_says_by_whom(dispatcher: Api, db: Db, names: dict[Role, str]) -> None:
    alert_id = insert_alert(db)
    first = dispatcher.ok("POST", f"/alerts/{alert_id}/ack")
    resp = dispatcher.post(f"/alerts/{alert_id}/ack", {"note": "me too"})
    assert resp.status_code == 409, resp.text
    detail = resp.json()["detail"]
    assert f"acknowledged by {names[Role.dispatcher]}" in detail
    assert first["acked_at"][:19] in detail
    assert [e[1] for e in events_of(db, alert_id)] == ["opened", "acknowledged"]
    assert dispatcher.ok("GET", f"/alerts/{alert_id}")["note"] is None


def test_viewer_cannot_ack_or_resolve(viewer: Api, db: Db) -> None:
    alert_id = insert_alert(db)
    for action in ("ack", "resolve"):
        resp = viewer.post(f"/alerts/{alert_id}/{action}", {"note": "not mine to close"})
        assert resp.status_code == 403, resp.text
    assert viewer.ok("GET", f"/alerts/{alert_id}")["status"] == "active"
    assert [e[1] for e in events_of(db, alert_id)] == ["opened"]


@pytest.mark.parametrize("body", [None, {}, {"note": None}])
def test_ack_without_a_note_keeps_the_old_one(dispatcher: Api, db: Db, body: dict[str, Any] | None) -> None:
    alert_id = insert_alert(db, note="door sensor loose")
    resp = dispatcher.request("POST", f"/alerts/{alert_id}/ack", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["note"] == "door sensor loose"
    *_, (_, event, _, note, _) = events_of(db, alert_id)
    assert (event, note) == ("acknowledged", None)


@pytest.mark.parametrize(
    ("body", "field"), [({"note": "x" * 2001}, "note"), ({"note": "ok", "by": "someone else"}, "by")]
)
def test_ack_body_is_checked(dispatcher: Api, db: Db, body: dict[str, Any], field: str) -> None:
    alert_id = insert_alert(db)
    resp = dispatcher.post(f"/alerts/{alert_id}/ack", body)
    assert resp.status_code == 422, resp.text
    assert field in resp.json()["detail"]
    assert dispatcher.ok("GET", f"/alerts/{alert_id}")["status"] == "active"


def test_ack_of_a_cleared_alert_is_409(dispatcher: Api, db: Db) -> None:
    alert_id = insert_alert(db, status="cleared")
    resp = dispatcher.post(f"/alerts/{alert_id}/ack", {})
    assert resp.status_code == 409, resp.text
    assert "cleared by its rule" in resp.json()["detail"]


@pytest.mark.parametrize("status", ["active", "acknowledged"])
def test_resolve_clears_an_open_alert(dispatcher: Api, db: Db, names: dict[Role, str], status: str) -> None:
    alert_id = insert_alert(db, status=status, note="engine note")
    alert = dispatcher.ok("POST", f"/alerts/{alert_id}/resolve", {"note": "goods moved to cold room 2"})
    who = names[Role.dispatcher]
    assert alert["status"] == "cleared"
    assert alert["resolved_by"] == who
    assert alert["cleared_at"].endswith("+08:00")
    assert alert["cleared_at"] == alert["resolved_at"] == alert["updated_at"]
    assert alert["note"] == "goods moved to cold room 2"
    *_, (_, event, actor, note, snapshot) = events_of(db, alert_id)
    assert (event, actor, note) == ("resolved", who, "goods moved to cold room 2")
    assert snapshot["status"] == "cleared"
    assert snapshot["resolved_by"] == who


def test_resolve_of_a_cleared_alert_is_409(dispatcher: Api, db: Db, names: dict[Role, str]) -> None:
    alert_id = insert_alert(db)
    dispatcher.ok("POST", f"/alerts/{alert_id}/resolve")
    resp = dispatcher.post(f"/alerts/{alert_id}/resolve", {"note": "again"})
    assert resp.status_code == 409, resp.text
    assert f"resolved by {names[Role.dispatcher]}" in resp.json()["detail"]
    assert [e[1] for e in events_of(db, alert_id)] == ["opened", "resolved"]
    resp = dispatcher.post(f"/alerts/{alert_id}/ack", {})
    assert resp.status_code == 409
    assert f"resolved by {names[Role.dispatcher]}" in resp.json()["detail"]

    by_rule = insert_alert(db, status="cleared")
    resp = dispatcher.post(f"/alerts/{by_rule}/resolve", {})
    assert resp.status_code == 409
    assert "cleared by its rule" in resp.json()["detail"]


def test_after_resolving_a_new_episode_can_open(dispatcher: Api, db: Db) -> None:
    """Resolving frees the (type, subject) slot: the engine may open the next episode as a new alert."""
    subject = uid("temp")
    first = insert_alert(db, subject_id=subject, opened_at=datetime.now(UTC) - timedelta(hours=1))
    dispatcher.ok("POST", f"/alerts/{first}/resolve")
    second = insert_alert(db, subject_id=subject)
    assert ids(dispatcher.ok("GET", f"/alerts?subject_id={subject}")) == [second, first]


# ---------------------------------------------------------------- the event stream


@contextmanager
def serve(**overrides: Any) -> Iterator[str]:
    """The app under a real uvicorn in a thread (TestClient cannot read an endless stream); yields its base URL."""
    app = create_app(load_settings(ApiSettings, **overrides))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=30)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}{API}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


Frame = dict[str, Any]


class Frames:
    """SSE frames of a response, parsed as a browser would: fields up to a blank line."""

    def __init__(self, resp: httpx.Response) -> None:
        self._lines = resp.iter_lines()

    def next(self) -> Frame:
        frame: Frame = {"data": [], "comments": []}
        for line in self._lines:
            if line == "":
                if frame["data"] or frame["comments"] or "id" in frame:
                    return frame
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "":
                frame["comments"].append(value)
            elif field == "data":
                frame["data"].append(value)
            else:
                frame[field] = value
        raise EOFError("the stream ended")

    def until(self, wanted: Callable[[Frame], bool], timeout: float = 15.0) -> list[Frame]:
        """Every frame up to and including the first one that is wanted."""
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            frame = self.next()
            seen.append(frame)
            if wanted(frame):
                return seen
        raise TimeoutError(f"no wanted frame within {timeout} s; saw {seen[-5:]}")


def alert_data(frame: Frame) -> dict[str, Any]:
    assert frame.get("event") == "alert", frame
    assert len(frame["data"]) == 1, "an event's JSON is one data line"
    data: dict[str, Any] = json.loads(frame["data"][0])
    return data


def about(alert_id: int) -> Callable[[Frame], bool]:
    return lambda f: f.get("event") == "alert" and alert_data(f)["id"] == alert_id


def is_keepalive(frame: Frame) -> bool:
    return frame["comments"] == ["keepalive"] and "event" not in frame


def stream_connections(db: Db) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'bondwatch-api-stream'"
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def server(test_env: dict[str, str]) -> Iterator[str]:
    with serve(api_stream_keepalive_s=0.5) as base:
        yield base


def test_stream_sends_an_ack_as_it_happens(
    server: str, dispatcher: Api, headers: dict[Role, dict[str, str]], db: Db, names: dict[Role, str]
) -> None:
    alert_id = insert_alert(db)
    with httpx.stream("GET", f"{server}/alerts/stream", headers=headers[Role.viewer], timeout=10) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.headers["x-accel-buffering"] == "no"
        frames = Frames(resp)
        dispatcher.ok("POST", f"/alerts/{alert_id}/ack", {"note": "on my way"})
        *before, frame = frames.until(about(alert_id))
        data = alert_data(frame)
        assert data["event"] == "acknowledged"
        assert data["status"] == "acknowledged"
        assert data["actor"] == data["acked_by"] == names[Role.dispatcher]
        assert data["note"] == "on my way"
        assert data["event_id"] == int(frame["id"])
        assert data["event_at"].endswith("+08:00")
        assert set(data) >= CONTRACT_FIELDS
        stored = db.execute("SELECT event FROM alert_events WHERE id = %s", (data["event_id"],)).fetchone()
        assert stored == ("acknowledged",)
        # Without Last-Event-ID the stream starts at the next change: the 'opened' event came before.
        assert not any(about(alert_id)(f) for f in before)


def test_stream_keeps_an_idle_connection_alive(server: str, headers: dict[Role, dict[str, str]]) -> None:
    with httpx.stream("GET", f"{server}/alerts/stream", headers=headers[Role.viewer], timeout=10) as resp:
        frames = Frames(resp)
        started = time.monotonic()
        frames.until(is_keepalive, timeout=5)
        frames.until(is_keepalive, timeout=5)
        assert time.monotonic() - started >= 0.5


def test_stream_replays_from_last_event_id(
    server: str, dispatcher: Api, headers: dict[Role, dict[str, str]], db: Db
) -> None:
    alert_id = insert_alert(db)
    dispatcher.ok("POST", f"/alerts/{alert_id}/ack")
    dispatcher.ok("POST", f"/alerts/{alert_id}/resolve")
    (opened_id, _, _, _, _), (acked_id, *_), (resolved_id, *_) = events_of(db, alert_id)

    def replay(extra_headers: dict[str, str], params: dict[str, Any]) -> list[tuple[int, str]]:
        got: list[tuple[int, str]] = []
        with httpx.stream(
            "GET",
            f"{server}/alerts/stream",
            headers={**headers[Role.viewer], **extra_headers},
            params=params,
            timeout=10,
        ) as resp:
            assert resp.status_code == 200
            frames = Frames(resp)
            for frame in frames.until(lambda f: about(alert_id)(f) and alert_data(f)["event"] == "resolved"):
                if about(alert_id)(frame):
                    got.append((int(frame["id"]), alert_data(frame)["event"]))
        return got

    everything = [(opened_id, "opened"), (acked_id, "acknowledged"), (resolved_id, "resolved")]
    assert replay({"Last-Event-ID": str(opened_id - 1)}, {}) == everything
    assert replay({}, {"after": opened_id}) == everything[1:]
    # A browser reconnecting sends Last-Event-ID on the URL it first opened: the header is the newer word.
    assert replay({"Last-Event-ID": str(acked_id)}, {"after": 0}) == everything[2:]


def test_stream_with_an_id_from_another_database_starts_now(
    server: str, dispatcher: Api, headers: dict[Role, dict[str, str]], db: Db
) -> None:
    alert_id = insert_alert(db)
    stale = {**headers[Role.viewer], "Last-Event-ID": str(10**15)}
    with httpx.stream("GET", f"{server}/alerts/stream", headers=stale, timeout=10) as resp:
        frames = Frames(resp)
        dispatcher.ok("POST", f"/alerts/{alert_id}/ack")
        *_, frame = frames.until(about(alert_id))
        assert alert_data(frame)["event"] == "acknowledged"


def test_stream_sends_an_event_committed_after_a_later_one(
    server: str, headers: dict[Role, dict[str, str]], db: Db, test_env: dict[str, str]
) -> None:
    """Ids are taken at INSERT, rows appear at COMMIT: a slow writer's lower id must still reach the client."""
    slow_alert, fast_alert = insert_alert(db, opened_event=False), insert_alert(db, opened_event=False)
    opened = (
        "INSERT INTO alert_events (site, alert_id, event, alert) SELECT %s, id, 'opened', "
        "bondwatch_alert_object(a) FROM alerts a WHERE id = %s RETURNING id"
    )
    with httpx.stream("GET", f"{server}/alerts/stream", headers=headers[Role.viewer], timeout=10) as resp:
        frames = Frames(resp)
        with psycopg.connect(test_env["BONDWATCH_DB_ADMIN_URL"]) as slow:
            slow_row = slow.execute(opened, (ENGINE_SITE, slow_alert)).fetchone()
            fast_row = db.execute(opened, (ENGINE_SITE, fast_alert)).fetchone()
            assert slow_row is not None and fast_row is not None
            assert slow_row[0] < fast_row[0]
            frames.until(about(fast_alert))
            slow.commit()
        (*_, frame) = frames.until(about(slow_alert))
        assert int(frame["id"]) == slow_row[0]


def test_stream_closes_its_connection_when_the_client_leaves(
    server: str, headers: dict[Role, dict[str, str]], db: Db
) -> None:
    wait_for(lambda: stream_connections(db) == 0, timeout=10)
    with httpx.stream("GET", f"{server}/alerts/stream", headers=headers[Role.viewer], timeout=10) as resp:
        frames = Frames(resp)  # kept: dropping the line iterator would close the response early
        frames.until(is_keepalive, timeout=5)
        assert stream_connections(db) == 1
    wait_for(lambda: stream_connections(db) == 0, timeout=10, state=lambda: f"{stream_connections(db)} open")


def test_streams_beyond_the_cap_are_503(test_env: dict[str, str], headers: dict[Role, dict[str, str]]) -> None:
    with serve(api_max_streams=1, api_stream_keepalive_s=0.5) as base:
        url, viewer = f"{base}/alerts/stream", headers[Role.viewer]
        with httpx.stream("GET", url, headers=viewer, timeout=10) as first:
            assert first.status_code == 200
            second = httpx.get(url, headers=viewer, timeout=10)
            assert second.status_code == 503, second.text
            assert "api_max_streams" in second.json()["detail"]

        def slot_free() -> bool:
            with httpx.stream("GET", url, headers=viewer, timeout=10) as again:
                return again.status_code == 200

        wait_for(slot_free, timeout=10)


def test_stream_needs_a_viewer_token(client: TestClient) -> None:
    """The role matrix cannot read an endless stream, so the stream's refusals are checked here."""
    resp = client.get(f"{API}/alerts/stream")
    assert resp.status_code == 401
    assert resp.headers.get("www-authenticate") == "Bearer"
    resp = client.get(f"{API}/alerts/stream", headers=bearer("bw_not-a-token-anyone-was-given"))
    assert resp.status_code == 401


def test_stream_rejects_a_bad_last_event_id(client: TestClient, headers: dict[Role, dict[str, str]]) -> None:
    resp = client.get(f"{API}/alerts/stream", headers={**headers[Role.viewer], "Last-Event-ID": "yesterday"})
    assert resp.status_code == 422
    assert "Last-Event-ID" in resp.json()["detail"]
