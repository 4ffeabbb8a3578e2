"""Alerts: the list and one alert with its history, acknowledging and resolving, and a live event stream.

Every shape of an alert comes from the SQL function ``bondwatch_alert_object``, so the API, the event
stream and the MQTT messages never disagree on what an alert looks like.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import Annotated, Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Body, Header, Path, Query, Request
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, dict_row
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.auth import Dispatcher, Principal, Viewer
from api.db import Conn
from api.errors import ApiError, Conflict, NotFound, error_responses
from api.settings import ApiSettings
from bondwatch.contract.alerts import Severity

log = logging.getLogger(__name__)
router = APIRouter(prefix="/alerts", tags=["alerts"], responses=error_responses(401))

Status = Literal["active", "acknowledged", "cleared", "open"]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]

# What needs a person first: open before cleared, unacknowledged before acknowledged, worst first, newest first.
ORDER = (
    "ORDER BY CASE a.status WHEN 'active' THEN 0 WHEN 'acknowledged' THEN 1 ELSE 2 END, "
    "array_position(ARRAY['critical', 'major', 'minor', 'warning'], a.severity), a.opened_at DESC, a.id DESC"
)

CHANNEL = "bondwatch_alerts"
STREAM_BATCH = 500
# Event ids are taken at INSERT and become visible at COMMIT, so a slower writer's event can appear
# below one already sent. Ids skipped over are looked for again for this long before given up on
# (a rolled-back insert leaves a hole that never fills).
GAP_GRACE_S = 30.0
MAX_GAPS = 1000
KEEPALIVE = b": keepalive\n\n"


class Unavailable(ApiError):
    status = 503


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str | None, Field(max_length=2000)] = None


NoteBody = Annotated[NoteIn | None, Body()]


# ---------------------------------------------------------------- reading


@router.get("")
async def list_alerts(
    who: Viewer,
    conn: Conn,
    status: Annotated[Status | None, Query(description="open: active or acknowledged")] = None,
    alert_type: Annotated[str | None, Query(alias="type")] = None,
    since: Annotated[AwareDatetime | None, Query(description="alerts changed at or after this time")] = None,
    subject_id: str | None = None,
    severity: Severity | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[Any] = []
    if status == "open":
        where.append("a.status <> 'cleared'")
    elif status is not None:
        where.append("a.status = %s")
        params.append(status)
    for column, value in (("type", alert_type), ("subject_id", subject_id), ("severity", severity)):
        if value is not None:
            where.append(f"a.{column} = %s")
            params.append(value)
    if since is not None:
        where.append("a.updated_at >= %s")
        params.append(since)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    # The page is chosen first and only its alerts are turned into JSON (not every alert that matches).
    cur = await conn.execute(
        f"SELECT bondwatch_alert_object(a) FROM (SELECT * FROM alerts a {clause}{ORDER} LIMIT %s) AS a {ORDER}",
        (*params, limit),
    )
    return [row[0] for row in await cur.fetchall()]


# Declared before /{alert_id}, whose int type would otherwise turn "stream" into a 422.
@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "one `alert` event per alert change"},
        **error_responses(503),
    },
)
async def stream_alerts(
    who: Viewer,
    request: Request,
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0)] = None,
    after: Annotated[int | None, Query(ge=0, description="replay events after this id (Last-Event-ID wins)")] = None,
) -> StreamingResponse:
    """Server-Sent Events: each change of an alert (opened, acknowledged, resolved, cleared, escalated).

    Each event's id is its alert_events id; a client that reconnects with Last-Event-ID (browsers do)
    or ?after= gets what it missed, in order. Without either, the stream starts with the next change.
    """
    settings: ApiSettings = request.app.state.settings
    slots = _slots(request)
    if slots.used >= settings.api_max_streams:
        raise Unavailable(
            f"{slots.used} alert streams are open, the most this server allows (api_max_streams); "
            "close one or poll GET /alerts?since="
        )
    # Counted before the first await, so concurrent requests cannot all pass the check.
    slots.used += 1
    stream = AlertStream(slots, settings)
    try:
        await stream.open(last_event_id if last_event_id is not None else after)
    except BaseException:
        await stream.close()
        raise
    return EventStreamResponse(stream)


@router.get("/{alert_id}", responses=error_responses(404))
async def get_alert(alert_id: AlertId, who: Viewer, conn: Conn) -> dict[str, Any]:
    cur = await conn.execute("SELECT bondwatch_alert_object(a) FROM alerts a WHERE a.id = %s", (alert_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    events = await conn.cursor(row_factory=dict_row).execute(
        "SELECT id, at, event, actor, note FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    )
    alert: dict[str, Any] = row[0]
    return {**alert, "events": await events.fetchall()}


# ---------------------------------------------------------------- people acting on alerts


@router.post("/{alert_id}/ack", responses=error_responses(400, 403, 404, 409))
async def acknowledge(
    alert_id: AlertId, who: Dispatcher, conn: Conn, request: Request, body: NoteBody = None
) -> dict[str, Any]:
    """An active alert: someone has seen it and is on it."""
    note = body.note if body else None
    alert = await _transition(
        conn,
        alert_id,
        "UPDATE alerts a SET status = 'acknowledged', acked_by = %(who)s, acked_at = now(), updated_at = now(), "
        "note = coalesce(%(note)s, a.note) WHERE a.id = %(id)s AND a.status = 'active' "
        "RETURNING bondwatch_alert_object(a)",
        "acknowledged",
        who,
        note,
        request.app.state.settings.site,
    )
    if alert is None:
        state = await _state(conn, alert_id)
        if state["status"] == "acknowledged":
            by, at = state["acked_by"], _iso(state["acked_at"])
            raise Conflict(f"alert {alert_id} is already acknowledged by {by} at {at}")
        raise Conflict(f"alert {alert_id} is {_cleared_how(state)}; only an active alert can be acknowledged")
    return alert


@router.post("/{alert_id}/resolve", responses=error_responses(400, 403, 404, 409))
async def resolve(
    alert_id: AlertId, who: Dispatcher, conn: Conn, request: Request, body: NoteBody = None
) -> dict[str, Any]:
    """An open alert: a person closes it, whether or not its rule still holds."""
    note = body.note if body else None
    alert = await _transition(
        conn,
        alert_id,
        "UPDATE alerts a SET status = 'cleared', cleared_at = now(), resolved_by = %(who)s, resolved_at = now(), "
        "updated_at = now(), note = coalesce(%(note)s, a.note) WHERE a.id = %(id)s AND a.status <> 'cleared' "
        "RETURNING bondwatch_alert_object(a)",
        "resolved",
        who,
        note,
        request.app.state.settings.site,
    )
    if alert is None:
        state = await _state(conn, alert_id)
        raise Conflict(f"alert {alert_id} is already {_cleared_how(state)}")
    return alert


async def _transition(
    conn: AsyncConnection[TupleRow],
    alert_id: int,
    update: str,
    event: str,
    who: Principal,
    note: str | None,
    site: str,
) -> dict[str, Any] | None:
    """Apply ``update`` (guarded by the status it starts from) and record the event; None if nothing matched.

    The status guard in the UPDATE is what makes two dispatchers pressing the button at once safe:
    the second one's UPDATE waits for the first's row lock, re-reads the row, and matches nothing.
    The event row goes in the same transaction, so a change is never without its history.
    """
    cur = await conn.execute(update, {"who": who.name, "note": note, "id": alert_id})
    row = await cur.fetchone()
    if row is None:
        return None
    alert: dict[str, Any] = row[0]
    # The event goes out through the relay of the site whose engine raised the alert; an alert with
    # no history yet (written by hand) belongs to this server's site.
    await conn.execute(
        "INSERT INTO alert_events (site, alert_id, event, actor, note, alert) VALUES ("
        " coalesce((SELECT site FROM alert_events WHERE alert_id = %(id)s ORDER BY id DESC LIMIT 1), %(site)s),"
        " %(id)s, %(event)s, %(who)s, %(note)s, %(alert)s)",
        {"site": site, "id": alert_id, "event": event, "who": who.name, "note": note, "alert": Jsonb(alert)},
    )
    return alert


async def _state(conn: AsyncConnection[TupleRow], alert_id: int) -> dict[str, Any]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT status, acked_by, acked_at, resolved_by, resolved_at, cleared_at FROM alerts WHERE id = %s",
        (alert_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no alert {alert_id}")
    return row


def _cleared_how(state: dict[str, Any]) -> str:
    if state["resolved_by"] is not None:
        return f"cleared: resolved by {state['resolved_by']} at {_iso(state['resolved_at'])}"
    return f"cleared by its rule at {_iso(state['cleared_at'])}"


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "an unknown time"


# ---------------------------------------------------------------- the event stream


@dataclass
class StreamSlots:
    used: int = 0


def _slots(request: Request) -> StreamSlots:
    # Per application, not per process: a test process runs more than one app.
    slots: StreamSlots | None = getattr(request.app.state, "alert_stream_slots", None)
    if slots is None:
        slots = request.app.state.alert_stream_slots = StreamSlots()
    return slots


class AlertStream:
    """One client's stream: a LISTENing connection of its own and the id of the last event sent."""

    def __init__(self, slots: StreamSlots, settings: ApiSettings) -> None:
        self._slots = slots
        self._settings = settings
        self._conn: AsyncConnection[TupleRow] | None = None
        self._closed = False
        self._last = 0
        self._gaps: dict[int, float] = {}  # ids skipped over -> monotonic time to stop looking

    async def open(self, after: int | None) -> None:
        try:
            self._conn = await AsyncConnection.connect(
                self._settings.db_url, autocommit=True, connect_timeout=10, application_name="bondwatch-api-stream"
            )
            await self._conn.execute("SELECT set_config('TimeZone', %s, false)", (self._settings.api_timezone,))
            # LISTEN before reading the current max: a change committed in between is then not lost.
            await self._conn.execute(f"LISTEN {CHANNEL}")
            cur = await self._conn.execute("SELECT coalesce(max(id), 0) FROM alert_events")
            row = await cur.fetchone()
            newest = int(row[0]) if row else 0
        except psycopg.OperationalError as exc:
            log.warning("alert stream: no database connection: %s", exc)
            raise Unavailable("the database cannot be reached; try again shortly") from None
        # An id beyond the newest comes from another database (one recreated since): waiting for the
        # sequence to catch up would hide every change until then.
        self._last = newest if after is None else min(after, newest)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._slots.used -= 1
        if self._conn is not None:
            await self._conn.close()

    async def events(self) -> AsyncGenerator[bytes, None]:
        assert self._conn is not None, "open() first"
        conn = self._conn
        keepalive = self._settings.api_stream_keepalive_s
        due = monotonic() + keepalive
        try:
            while True:
                rows = await self._fetch(conn)
                for row in rows:
                    yield self._format(row)
                if rows:
                    due = monotonic() + keepalive
                if len(rows) >= STREAM_BATCH:
                    continue  # a backlog: send it all before waiting
                if monotonic() >= due:
                    yield KEEPALIVE
                    due = monotonic() + keepalive
                # Every wake-up, notification or not, fetches again: that also looks for late-committed gaps.
                async for _ in conn.notifies(timeout=max(0.0, due - monotonic()), stop_after=1):
                    pass
        except psycopg.OperationalError as exc:
            # Ending the response makes the client reconnect with Last-Event-ID and miss nothing.
            log.warning("alert stream ended: database connection lost: %s", exc)
        finally:
            await self.close()

    async def _fetch(self, conn: AsyncConnection[TupleRow]) -> list[tuple[Any, ...]]:
        now = monotonic()
        self._gaps = {gap: until for gap, until in self._gaps.items() if until > now}
        cur = await conn.execute(
            "SELECT id, at, event, actor, alert FROM alert_events WHERE id > %s OR id = ANY(%s) ORDER BY id LIMIT %s",
            (self._last, list(self._gaps), STREAM_BATCH),
        )
        rows = await cur.fetchall()
        for row in rows:
            event_id = int(row[0])
            if event_id <= self._last:
                self._gaps.pop(event_id, None)
                continue
            for skipped in range(self._last + 1, min(event_id, self._last + 1 + MAX_GAPS - len(self._gaps))):
                self._gaps[skipped] = now + GAP_GRACE_S
            self._last = event_id
        return rows

    @staticmethod
    def _format(row: tuple[Any, ...]) -> bytes:
        event_id, at, event, actor, alert = row
        data = {**alert, "event": event, "event_id": event_id, "event_at": at, "actor": actor}
        return b"id: %d\nevent: alert\ndata: %s\n\n" % (event_id, orjson.dumps(data))


class EventStreamResponse(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, stream: AlertStream) -> None:
        self._events = stream.events()
        self._stream = stream
        # X-Accel-Buffering: nginx would otherwise hold events back to fill its buffer.
        super().__init__(self._events, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A client that goes away while the generator waits at a yield leaves it suspended; close it
            # now rather than whenever it is garbage-collected, so its connection and slot come back.
            await self._events.aclose()
            await self._stream.close()
