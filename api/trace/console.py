"""``bondwatch trace EPC``: a tag's story in the terminal, Chinese labels first.

It reads the database directly with the API's own assembly (:func:`api.trace.timeline.assemble`), so
the terminal and ``GET /api/v1/trace/{epc}`` never tell two stories; no API server is needed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.encoders import jsonable_encoder
from psycopg import AsyncConnection
from rich.console import Console
from rich.table import Table

from api.settings import ApiSettings
from api.trace import epcis, timeline

CUSTOMS_ZH = {"bonded": "保税 bonded", "non_bonded": "非保税 non-bonded"}
KIND_ZH = {"cargo": "货物 cargo", "vehicle": "车辆 vehicle"}
DIRECTION_ZH = {"in": "入区 in", "out": "出区 out"}
DECISION_ZH = {"pass": "放行 pass", "hold": "拦截 hold"}


async def load(settings: ApiSettings, epc: str) -> dict[str, Any]:
    async with await AsyncConnection.connect(settings.db_url, application_name="bondwatch-trace") as conn:
        await conn.set_read_only(True)  # a trace only reads
        # As the API's pool does: times come out with the zone's offset (+08:00).
        await conn.execute("SELECT set_config('TimeZone', %s, false)", (settings.api_timezone,))
        return await timeline.assemble(conn, epc)


def print_trace(settings: ApiSettings, epc: str, *, as_epcis: bool = False, as_json: bool = False) -> None:
    """Print the story (a table), its JSON (--json) or its EPCIS 2.0 document (--epcis) on stdout."""
    story = asyncio.run(load(settings, epc))
    # JSON goes out plain (no colours, no wrapping at the terminal's width) for the next program.
    if as_epcis:
        print(json.dumps(epcis.document(story, settings.site, settings.api_timezone), ensure_ascii=False, indent=2))
    elif as_json:
        print(json.dumps(jsonable_encoder(story), ensure_ascii=False, indent=2))
    else:
        render(story, Console(highlight=False))


def render(story: dict[str, Any], out: Console) -> None:
    out.print(f"[bold]标签追溯 Trace of {story['epc']}[/]  {story['uri']}  ({story['scheme']})")
    tag = story["tag"]
    if tag is None:
        out.print("未登记的标签 not registered as a tag")
    else:
        vehicle = f"  车辆 vehicle {tag['vehicle_id']} {tag['plate'] or ''}" if tag["vehicle_id"] else ""
        out.print(
            f"{KIND_ZH.get(tag['kind'], tag['kind'])} · {CUSTOMS_ZH.get(tag['customs_status'], tag['customs_status'])}"
            f" · {tag['description'] or '-'}{vehicle}"
        )

    events = Table("时间 time", "事件 event", "地点 where", "详情 details", title="时间线 Timeline", expand=True)
    for e in story["events"]:
        events.add_row(_time(e["at"]), f"{e['label_zh']} {e['kind']}", _where(e), _details(e))
    out.print(events)

    rides = Table(
        "车辆 vehicle", "从 from", "到 to", "止于 ends", "轨迹点 points", "起点→终点 start→end", title="行程 Rides"
    )
    for r in story["rides"]:
        track = r["track"]
        ends = f"{_lonlat(track[0])} → {_lonlat(track[-1])}" if track else "-"
        points = f"{len(track)}/{r['points_total']}" if r["downsampled"] else str(len(track))
        rides.add_row(
            f"{r['plate'] or ''} {r['vehicle_id']}", _time(r["from"]), _time(r["to"]), r["ends"], points, ends
        )
    out.print(rides)
    if story["truncated"]:
        out.print(f"[yellow]只显示最近的记录 only the most recent shown: {', '.join(story['truncated'])}[/]")


def _time(ts: Any) -> str:
    return ts.isoformat(sep=" ", timespec="seconds") if ts is not None else "-"


def _lonlat(point: list[Any]) -> str:
    return f"{point[0]:.5f},{point[1]:.5f}"


def _where(e: dict[str, Any]) -> str:
    if e["kind"] in ("passage", "read"):
        gate = e.get("gate_id")
        place = f"{e['gate_name']} ({gate})" if e.get("gate_name") else (gate or "")
        if e["kind"] == "read":
            reader = e["device_name"] or e["device_id"]
            return f"{place} {reader}".strip()
        return place
    if e["kind"] == "alert":
        return f"{e['subject_kind']} {e['subject_id']}"
    return ""


def _details(e: dict[str, Any]) -> str:
    kind = e["kind"]
    if kind == "passage":
        parts = [e["passage_id"], DIRECTION_ZH.get(e["direction"], e["direction"])]
        if e["decision"]:
            parts.append(DECISION_ZH.get(e["decision"], e["decision"]))
        if e["vehicle_id"]:
            parts.append(f"车辆 {e['plate'] or ''} {e['vehicle_id']}".replace("  ", " "))
        if e["release_note_id"]:
            parts.append(f"核放单 {e['release_note_id']}")
        parts += [r.get("text") or r.get("code", "") for r in e["reasons_for_tag"]]
        return " · ".join(parts)
    if kind == "read":
        parts = [DIRECTION_ZH.get(e["direction"] or "", e["direction"] or "-"), f"天线 antenna {e['antenna']}"]
        if e["rssi_dbm"] is not None:
            parts.append(f"{e['rssi_dbm']} dBm")
        if e["passage_id"]:
            parts.append(f"→ {e['passage_id']}")
        return " · ".join(parts)
    if kind == "release_note":
        used = f" · 已用于 used by {e['used_passage_id']}" if e["used_passage_id"] else ""
        return (
            f"{e['release_note_id']} · 车辆 {e['plate'] or ''} {e['vehicle_id']} · "
            f"有效至 valid until {_time(e['valid_until'])}{used}"
        )
    if kind == "alert":
        return f"#{e['alert_id']} {e['type']} {e['severity']} {e['status']} · {e['message_zh'] or ''}".rstrip(" ·")
    return ""
