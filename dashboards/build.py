"""Writes the Grafana dashboards in this folder (dashboards/*.json) from the readable definitions below.

    .venv/bin/python dashboards/build.py           # regenerate the JSON files
    .venv/bin/python dashboards/build.py --check   # exit 1 if a JSON file differs from what this writes

Why a generator: the panels' SQL is the substance of these dashboards, and in Grafana's JSON every query
is one long escaped line, unreadable in review. Here each query is plain SQL, and the layout, the data
source and the bilingual labels are written once. The JSON files are what Grafana provisions and what
`bondwatch dashboards push` uploads; tests/dashboards/ checks both that they match this file and that
every query runs (docs/dashboards.md). Edit here, run the script, commit both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from textwrap import dedent
from typing import Any

# Laid out by hand, not by `ruff format`: each panel's grid position (x, y, w, h) on one line, field overrides
# and colour maps kept compact, as a reviewer reads the board.
# fmt: off

HERE = Path(__file__).resolve().parent
GRAFANA_VERSION = "12.3.3"  # docker-compose.yml's grafana/grafana-oss image; schemaVersion is that release's
SCHEMA_VERSION = 42
TIMEZONE = "Asia/Shanghai"
DS = {"type": "grafana-postgresql-datasource", "uid": "bondwatch-tsdb"}

Json = dict[str, Any]

# Colours by meaning, shared by every dashboard (Grafana's named palette colours).
SEVERITY_COLOURS = {"critical": "dark-red", "major": "orange", "minor": "yellow", "warning": "blue"}
STATE_COLOURS = {0: "green", 1: "orange", 2: "blue", 3: "red", 4: "text"}
STATE_LABELS = {0: "行驶 moving", 1: "卡口 at gate", 2: "充电/加氢 charging", 3: "告警 alert", 4: "停靠 stopped"}
FENCE_COLOURS = {0: "dark-blue", 1: "super-light-blue", 2: "orange", 3: "purple"}
FENCE_LABELS = {0: "保税区边界 bonded boundary", 1: "作业区 zone", 2: "卡口 gate", 3: "监管通道 corridor"}


def sql(text: str) -> str:
    return dedent(text).strip()


def target(query: str, ref: str = "A", fmt: str = "table") -> Json:
    return {
        "refId": ref,
        "datasource": DS,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": sql(query),
    }


def override(name: str, *props: tuple[str, Any]) -> Json:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": k, "value": v} for k, v in props]}


def colour(name: str, fixed: str) -> Json:
    return override(name, ("color", {"mode": "fixed", "fixedColor": fixed}))


def thresholds(*steps: tuple[float | None, str]) -> Json:
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


def value_map(labels: dict[int, str], colours: dict[int, str]) -> list[Json]:
    return [
        {
            "type": "value",
            "options": {str(k): {"text": labels[k], "color": colours[k], "index": i} for i, k in enumerate(labels)},
        }
    ]


def text_map(pairs: dict[str, str]) -> list[Json]:
    """Colours for text cells (severity, status) in tables."""
    return [{"type": "value", "options": {k: {"color": c, "index": i} for i, (k, c) in enumerate(pairs.items())}}]


SEVERITY_TEXT_COLOURS = {
    "紧急 critical": "dark-red",
    "重要 major": "orange",
    "次要 minor": "yellow",
    "提示 warning": "blue",
}
STATUS_TEXT_COLOURS = {"未确认 active": "red", "已确认 acknowledged": "yellow", "已结束 cleared": "green"}


class Board:
    """One dashboard: panels placed on Grafana's 24-column grid, in reading order."""

    def __init__(self, uid: str, title: str, description: str, tags: list[str], time_from: str, refresh: str) -> None:
        self.uid = uid
        self.title = title
        self.description = description
        self.tags = tags
        self.time_from = time_from
        self.refresh = refresh
        self.panels: list[Json] = []
        self.variables: list[Json] = []

    def add(self, panel: Json, x: int, y: int, w: int, h: int) -> Json:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        self.panels.append(panel)
        return panel

    def json(self) -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["bondwatch", *self.tags],
            "timezone": TIMEZONE,
            "weekStart": "monday",
            "editable": False,
            "graphTooltip": 1,
            "liveNow": False,
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "15m", "1h"]},
            "fiscalYearStartMonth": 0,
            "links": [
                {
                    "title": "BondWatch 看板 dashboards",
                    "type": "dashboards",
                    "tags": ["bondwatch"],
                    "asDropdown": True,
                    "icon": "external link",
                    "includeVars": False,
                    "keepTime": True,
                    "targetBlank": False,
                    "tooltip": "",
                }
            ],
            "annotations": {
                "list": [
                    {
                        "builtIn": 1,
                        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True,
                        "hide": True,
                        "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts",
                        "type": "dashboard",
                    }
                ]
            },
            "templating": {"list": self.variables},
            "panels": self.panels,
        }


# --------------------------------------------------------------------------------------------- panels


def _base(kind: str, title: str, description: str, targets: list[Json]) -> Json:
    panel: Json = {"type": kind, "title": title, "description": description, "pluginVersion": GRAFANA_VERSION}
    if targets:
        panel["datasource"] = DS
        panel["targets"] = targets
    return panel


def stat(title: str, description: str, query: str, *, unit: str = "none", decimals: int | None = 0,
         colours: dict[str, str] | None = None, steps: Json | None = None, graph: bool = False,
         fmt: str = "table", overrides: list[Json] | None = None) -> Json:
    panel = _base("stat", title, description, [target(query, fmt=fmt)])
    defaults: Json = {"unit": unit, "color": {"mode": "thresholds"}, "thresholds": steps or thresholds((None, "text"))}
    if decimals is not None:
        defaults["decimals"] = decimals
    panel["fieldConfig"] = {
        "defaults": defaults,
        "overrides": [*(colour(k, v) for k, v in (colours or {}).items()), *(overrides or [])],
    }
    panel["options"] = {
        "reduceOptions": {"values": False, "calcs": ["lastNotNull"], "fields": ""},
        "orientation": "auto",
        "textMode": "value_and_name",
        "colorMode": "background" if colours else "value",
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "wideLayout": True,
        "showPercentChange": False,
        "percentChangeColorMode": "standard",
        "text": {"titleSize": 16, "valueSize": 40},
    }
    return panel


def timeseries(title: str, description: str, targets: list[Json], *, unit: str = "none", bars: bool = False,
               overrides: list[Json] | None = None, stack: bool = False, decimals: int | None = None,
               min_interval: str | None = None, max_points: int | None = None) -> Json:
    panel = _base("timeseries", title, description, targets)
    custom: Json = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1 if bars else 2,
        "fillOpacity": 70 if bars else 10,
        "gradientMode": "none",
        "showPoints": "never",
        "pointSize": 4,
        "spanNulls": False,
        "axisPlacement": "auto",
        "axisLabel": "",
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "barAlignment": 0,
        "lineInterpolation": "linear",
        "scaleDistribution": {"type": "linear"},
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "off"},
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
    }
    defaults: Json = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    panel["fieldConfig"] = {"defaults": defaults, "overrides": overrides or []}
    panel["options"] = {
        "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    if min_interval:
        panel["interval"] = min_interval
    if max_points:
        panel["maxDataPoints"] = max_points
    return panel


def table(title: str, description: str, query: str, *, overrides: list[Json] | None = None,
          sort_by: str | None = None, desc: bool = False) -> Json:
    panel = _base("table", title, description, [target(query)])
    panel["fieldConfig"] = {
        "defaults": {
            "custom": {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False, "filterable": False},
            "color": {"mode": "thresholds"},
            "thresholds": thresholds((None, "text")),
        },
        "overrides": overrides or [],
    }
    if sort_by:
        panel["options"]["sortBy"] = [{"displayName": sort_by, "desc": desc}]
    return panel


def bargauge(title: str, description: str, query: str, *, name_field: str, unit: str, min_: float, max_: float,
             steps: Json) -> Json:
    panel = _base("bargauge", title, description, [target(query)])
    panel["fieldConfig"] = {
        "defaults": {
            "unit": unit,
            "min": min_,
            "max": max_,
            "decimals": 0,
            # One bar per row, named by the row's name column.
            "displayName": "${__data.fields." + name_field + "}",
            "color": {"mode": "thresholds"},
            "thresholds": steps,
        },
        "overrides": [],
    }
    panel["options"] = {
        "reduceOptions": {"values": True, "calcs": [], "fields": ""},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "valueMode": "color",
        "namePlacement": "left",
        "showUnfilled": True,
        "sizing": "auto",
        "minVizWidth": 8,
        "minVizHeight": 16,
        "maxVizHeight": 300,
        "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom", "calcs": []},
    }
    return panel


def barchart(title: str, description: str, query: str, *, x_field: str, horizontal: bool = False,
             stack: bool = False, overrides: list[Json] | None = None, unit: str = "none") -> Json:
    panel = _base("barchart", title, description, [target(query)])
    panel["fieldConfig"] = {
        "defaults": {
            "unit": unit,
            "color": {"mode": "palette-classic"},
            "custom": {
                "fillOpacity": 80,
                "gradientMode": "none",
                "lineWidth": 1,
                "axisPlacement": "auto",
                "axisLabel": "",
                "axisCenteredZero": False,
                "axisBorderShow": False,
                "axisColorMode": "text",
                "scaleDistribution": {"type": "linear"},
                "thresholdsStyle": {"mode": "off"},
                "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            },
        },
        "overrides": overrides or [],
    }
    panel["options"] = {
        "xField": x_field,
        "orientation": "horizontal" if horizontal else "auto",
        "stacking": "normal" if stack else "none",
        "showValue": "auto",
        "groupWidth": 0.7,
        "barWidth": 0.9,
        "barRadius": 0,
        "fullHighlight": False,
        "xTickLabelRotation": 0,
        "xTickLabelMaxLength": 24,
        "xTickLabelSpacing": 0,
        "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def text(title: str, content: str) -> Json:
    panel = _base("text", title, "", [])
    panel["options"] = {"mode": "markdown", "content": dedent(content).strip()}
    return panel


def markers(name: str, ref: str, *, size: float, colour_field: str, text_field: str | None) -> Json:
    """A Geomap markers layer over one query's rows (the panel's refId `ref`), placed by lat/lon columns."""
    style: Json = {
        "color": {"field": colour_field, "fixed": "dark-green"},
        "opacity": 0.9,
        "size": {"fixed": size, "min": 2, "max": 15},
        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
        "symbolAlign": {"horizontal": "center", "vertical": "center"},
        "rotation": {"fixed": 0, "min": -360, "max": 360, "mode": "mod"},
    }
    if text_field:
        style["text"] = {"mode": "field", "field": text_field, "fixed": ""}
        style["textConfig"] = {"fontSize": 11, "offsetX": 0, "offsetY": -12, "textAlign": "center",
                               "textBaseline": "bottom"}
    return {
        "type": "markers",
        "name": name,
        "config": {"showLegend": text_field is not None, "style": style},
        "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
        "filterData": {"id": "byRefId", "options": ref},
        "tooltip": True,
    }


def query_variable(name: str, label: str, query: str) -> Json:
    """A multi-value variable filled by SQL (`__value`, `__text` columns), All selected by default."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DS,
        "query": sql(query),
        "refresh": 1,
        "regex": "",
        "sort": 0,
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


def number_variable(name: str, label: str, value: str, description: str) -> Json:
    """A factor the viewer may change on the dashboard (a text box), with its documented default."""
    return {
        "type": "textbox",
        "name": name,
        "label": label,
        "description": description,
        "query": value,
        "current": {"selected": False, "text": value, "value": value},
        "options": [{"selected": True, "text": value, "value": value}],
        "hide": 0,
        "skipUrlSync": False,
    }


def choice_variable(name: str, label: str, choices: list[tuple[str, str]], description: str) -> Json:
    """A factor chosen from documented values (`text : value` pairs); the first is the default."""
    text0, value0 = choices[0]
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "description": description,
        "query": ", ".join(f"{t} : {v}" for t, v in choices),
        "current": {"selected": True, "text": text0, "value": value0},
        "options": [{"selected": i == 0, "text": t, "value": v} for i, (t, v) in enumerate(choices)],
        "multi": False,
        "includeAll": False,
        "allowCustomValue": True,
        "hide": 0,
        "skipUrlSync": False,
    }


# --------------------------------------------------------------------------------------------- 1. fleet

FLEET_STATE = "bondwatch_fleet_state($__timeTo()::timestamptz)"


def fleet() -> Board:
    b = Board(
        "bondwatch-fleet",
        "车队 Fleet",
        "零碳短驳车队实时位置与状态 Positions and states of the zero-carbon short-haul fleet",
        ["fleet", "车队"],
        "now-6h",
        "30s",
    )
    b.add(
        stat(
            "车队状态 Fleet now",
            "每辆车在时间范围末尾的状态（规则见 docs/dashboards.md）。State of each truck at the end of the time "
            "range; the rules are in docs/dashboards.md. 在途运单: trucks whose latest gate passage (12 h) was an "
            "outbound pass.",
            f"""
            SELECT count(*) FILTER (WHERE s.state = 'moving') AS "行驶 moving",
                   count(*) FILTER (WHERE s.state = 'at_gate') AS "卡口 at gate",
                   count(*) FILTER (WHERE s.state = 'charging') AS "充电/加氢 charging",
                   count(*) FILTER (WHERE s.state = 'alert') AS "告警 alert",
                   count(*) FILTER (WHERE s.state = 'stopped') AS "停靠 stopped",
                   (SELECT count(*) FROM vehicles) - count(*) AS "无定位 no fix",
                   (SELECT count(*)
                    FROM vehicles v
                    CROSS JOIN LATERAL (
                        SELECT g.direction, g.decision FROM gate_passages g
                        WHERE g.vehicle_id = v.vehicle_id
                          AND g.first_read_at <= $__timeTo()::timestamptz
                          AND g.first_read_at > $__timeTo()::timestamptz - interval '12 hours'
                        ORDER BY g.first_read_at DESC LIMIT 1) AS last
                    WHERE last.direction = 'out' AND last.decision = 'pass') AS "在途运单 trips out"
            FROM {FLEET_STATE} AS s
            """,
            colours={
                "行驶 moving": "green",
                "卡口 at gate": "orange",
                "充电/加氢 charging": "blue",
                "告警 alert": "red",
                "停靠 stopped": "#808080",
                "无定位 no fix": "#505050",
                "在途运单 trips out": "purple",
            },
        ),
        0, 0, 24, 4,
    )
    truck_overrides = [
        override("state_code", ("mappings", value_map(STATE_LABELS, STATE_COLOURS)), ("displayName", "状态 state")),
        override("fence_code", ("mappings", value_map(FENCE_LABELS, FENCE_COLOURS)), ("displayName", "围栏 fence")),
    ]
    geomap = _base(
        "geomap",
        "车辆位置 Truck positions",
        "颜色: 绿 行驶、橙 卡口、蓝 充电/加氢、红 告警、灰 停靠。"
        "点线: 保税区边界(深蓝)、作业区(浅蓝)、卡口(橙)、监管通道(紫)。"
        " Colour: green moving, orange at a gate, blue charging/refuelling, red open alert, grey stopped. Dotted: "
        "bonded boundary, zones, gates, corridors (from the geofence registry).",
        [
            target(
                f"""
                SELECT s.plate, s.lat, s.lon, s.state_code,
                       s.speed_kmh AS "车速 speed km/h", s.soc_pct AS "电量 SoC %",
                       s.ts AS "定位时间 fix time", coalesce(s.gate_id, '') AS "卡口 gate",
                       coalesce(bondwatch_alert_type_zh(s.worst_alert), '') AS "告警 alert"
                FROM {FLEET_STATE} AS s
                """,
                "A",
            ),
            target(
                """
                SELECT o.lat, o.lon, o.kind_code AS fence_code, o.name AS "围栏 fence"
                FROM bondwatch_geofence_outline() AS o
                """,
                "B",
            ),
        ],
    )
    geomap["fieldConfig"] = {
        "defaults": {"color": {"mode": "thresholds"}, "thresholds": thresholds((None, "green"))},
        "overrides": truck_overrides,
    }
    geomap["options"] = {
        "view": {"id": "coords", "lat": 39.5225, "lon": 109.883, "zoom": 14.6, "allLayers": True},
        "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True, "showScale": True},
        "basemap": {"type": "default", "name": "底图 Basemap", "config": {}},
        "layers": [
            markers("围栏 Geofences", "B", size=2, colour_field="fence_code", text_field=None),
            markers("车辆 Trucks", "A", size=9, colour_field="state_code", text_field="plate"),
        ],
        "tooltip": {"mode": "details"},
    }
    b.add(geomap, 0, 4, 16, 16)
    b.add(
        bargauge(
            "电量 State of charge",
            "每辆车最新定位的电量；燃料电池车为其缓冲电池。State of charge at the latest fix; for a fuel-cell truck, "
            "its buffer battery. Red below 20 % (low_soc), orange below 40 % (time to charge).",
            f"""
            SELECT s.plate, s.soc_pct AS "电量 SoC"
            FROM {FLEET_STATE} AS s
            WHERE s.soc_pct IS NOT NULL
            ORDER BY s.soc_pct, s.plate
            """,
            name_field="plate",
            unit="percent",
            min_=0,
            max_=100,
            steps=thresholds((None, "red"), (20, "orange"), (40, "green")),
        ),
        16, 4, 8, 16,
    )
    b.add(
        table(
            "在途运单 Trips in progress",
            "最近 12 小时内最后一次卡口通行为出区放行的车辆。Trucks whose latest gate passage in the last 12 h was an "
            "outbound pass: out on a trip until they pass a gate inbound.",
            """
            SELECT v.plate AS "车牌 plate",
                   coalesce(g.name, gp.gate_id) AS "出区卡口 gate",
                   gp.first_read_at AS "出区时间 left at",
                   extract(epoch FROM $__timeTo()::timestamptz - gp.first_read_at) / 60 AS "在途 minutes out",
                   cardinality(gp.cargo_epcs) AS "货物件数 pallets",
                   coalesce(gp.release_note_id, '') AS "核放单 release note",
                   s.speed_kmh AS "车速 km/h",
                   s.soc_pct AS "电量 SoC %"
            FROM vehicles v
            CROSS JOIN LATERAL (
                SELECT * FROM gate_passages g
                WHERE g.vehicle_id = v.vehicle_id
                  AND g.first_read_at <= $__timeTo()::timestamptz
                  AND g.first_read_at > $__timeTo()::timestamptz - interval '12 hours'
                ORDER BY g.first_read_at DESC
                LIMIT 1
            ) AS gp
            LEFT JOIN geofences g ON g.id = gp.gate_id
            LEFT JOIN bondwatch_fleet_state($__timeTo()::timestamptz) AS s ON s.vehicle_id = v.vehicle_id
            WHERE gp.direction = 'out' AND gp.decision = 'pass'
            ORDER BY gp.first_read_at
            """,
            overrides=[
                override("在途 minutes out", ("unit", "m"), ("decimals", 0)),
                override("电量 SoC %", ("unit", "percent"), ("decimals", 0)),
                override("车速 km/h", ("unit", "velocitykmh"), ("decimals", 0)),
                override("出区时间 left at", ("unit", "time:MM-DD HH:mm")),
            ],
        ),
        0, 20, 12, 10,
    )
    b.add(
        table(
            "车队告警 Open fleet alerts",
            "时间范围末尾仍未结束、对象为车辆的告警，按级别与开始时间排序。Alerts on a vehicle open at the end of the "
            "time range, most severe and oldest first.",
            """
            SELECT bondwatch_severity_zh(a.severity) AS "级别 severity",
                   bondwatch_alert_type_zh(a.type) AS "类型 type",
                   v.plate AS "车牌 plate",
                   a.opened_at AS "开始 opened",
                   extract(epoch FROM $__timeTo()::timestamptz - a.opened_at) / 60 AS "持续 minutes",
                   CASE WHEN a.acked_at <= $__timeTo()::timestamptz THEN '已确认 acknowledged'
                        ELSE '未确认 active' END AS "状态 status",
                   coalesce(a.details ->> 'message_zh', '') AS "说明 details"
            FROM vehicles v
            CROSS JOIN LATERAL (
                SELECT * FROM alerts a
                WHERE a.subject_id = v.vehicle_id AND a.subject_kind = 'vehicle'
                  AND a.opened_at <= $__timeTo()::timestamptz
                  AND (a.cleared_at IS NULL OR a.cleared_at > $__timeTo()::timestamptz)
            ) AS a
            ORDER BY bondwatch_severity_rank(a.severity), a.opened_at
            """,
            overrides=[
                override("级别 severity", ("mappings", text_map(SEVERITY_TEXT_COLOURS)),
                         ("custom.cellOptions", {"type": "color-text"})),
                override("状态 status", ("mappings", text_map(STATUS_TEXT_COLOURS)),
                         ("custom.cellOptions", {"type": "color-text"})),
                override("持续 minutes", ("unit", "m"), ("decimals", 0)),
                override("开始 opened", ("unit", "time:MM-DD HH:mm")),
            ],
        ),
        12, 20, 12, 10,
    )
    b.add(
        timeseries(
            "电量曲线 State of charge over time",
            "每辆车的电量（时间桶平均；每 5 分钟取最后一次定位，最近 10 分钟取全部定位）。State of charge per truck, "
            "averaged per time bucket (of each truck's last fix in every 5 minutes; every fix in the last 10).",
            [
                target(
                    """
                    SELECT s."time", s.plate AS metric, s.soc
                    FROM bondwatch_soc_series($__timeFrom()::timestamptz, $__timeTo()::timestamptz,
                                              make_interval(secs => $__interval_ms / 1000.0)) AS s
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            unit="percent",
            decimals=0,
            min_interval="1m",
            max_points=300,
        ),
        0, 30, 24, 9,
    )
    return b


# --------------------------------------------------------------------------------------------- 2. cold storage

LATEST_TEMP = """
    LEFT JOIN LATERAL (
        SELECT t.ts, t.temp_c, t.door_open FROM temperatures t
        WHERE t.device_id = d.device_id
          AND t.ts <= $__timeTo()::timestamptz AND t.ts > $__timeTo()::timestamptz - interval '7 days'
        ORDER BY t.ts DESC
        LIMIT 1
    ) AS l ON true"""


def coldstore() -> Board:
    b = Board(
        "bondwatch-coldstore",
        "冷库 Cold storage",
        "冷库温度、超温与预警、开门、平均动力学温度 Cold-room temperatures, excursions, doors and MKT",
        ["coldchain", "冷链"],
        "now-24h",
        "1m",
    )
    b.variables.append(
        query_variable(
            "room",
            "冷库 Room",
            """
            SELECT device_id AS __value, name AS __text FROM devices WHERE kind = 'temp' ORDER BY device_id
            """,
        )
    )
    b.add(
        stat(
            "冷库状态 Rooms now",
            "时间范围末尾每个传感器的最新读数：在温控范围内、超出范围、门开着、离线（超过 offline_after_s 无读数）。"
            "Each sensor's latest reading at the end of the range: inside its profile, outside it, door open, or "
            "offline (nothing for longer than its profile's offline_after_s).",
            f"""
            WITH r AS (
                SELECT d.device_id, p.min_c, p.max_c, l.ts, l.temp_c, l.door_open,
                       l.ts IS NULL OR $__timeTo()::timestamptz - l.ts
                           > make_interval(secs => coalesce(p.offline_after_s, 600)) AS offline
                FROM devices d
                LEFT JOIN profiles p ON p.name = d.profile
                {LATEST_TEMP.strip()}
                WHERE d.kind = 'temp' AND d.device_id IN ($room)
            )
            SELECT count(*) FILTER (WHERE NOT offline AND temp_c BETWEEN min_c AND max_c) AS "正常 in range",
                   count(*) FILTER (WHERE NOT offline AND NOT temp_c BETWEEN min_c AND max_c) AS "超限 out of range",
                   count(*) FILTER (WHERE NOT offline AND door_open) AS "门开 door open",
                   count(*) FILTER (WHERE offline) AS "离线 offline"
            FROM r
            """,
            colours={"正常 in range": "green", "超限 out of range": "red", "门开 door open": "orange",
                     "离线 offline": "#808080"},
        ),
        0, 0, 24, 4,
    )
    limits = [
        override("下限 min", ("color", {"mode": "fixed", "fixedColor": "blue"}),
                 ("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}), ("custom.fillOpacity", 0)),
        override("上限 max", ("color", {"mode": "fixed", "fixedColor": "red"}),
                 ("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}), ("custom.fillOpacity", 0)),
        override("温度 temperature", ("color", {"mode": "fixed", "fixedColor": "green"})),
    ]
    room_panel = timeseries(
        "$room 温度 Temperature",
        "平均温度（时间桶）与该冷库温控标准的上下限（虚线）。Mean temperature per time bucket against the room's "
        "profile limits (dashed).",
        [
            target(
                """
                SELECT $__timeGroupAlias(t.ts, $__interval),
                       avg(t.temp_c) AS "温度 temperature",
                       min(p.min_c) AS "下限 min",
                       min(p.max_c) AS "上限 max"
                FROM temperatures t
                JOIN devices d ON d.device_id = t.device_id
                LEFT JOIN profiles p ON p.name = d.profile
                WHERE t.device_id IN ($room) AND $__timeFilter(t.ts)
                GROUP BY 1
                ORDER BY 1
                """,
                fmt="time_series",
            )
        ],
        unit="celsius",
        decimals=1,
        overrides=limits,
        min_interval="1m",
    )
    room_panel["repeat"] = "room"
    room_panel["repeatDirection"] = "h"
    room_panel["maxPerRow"] = 4
    b.add(room_panel, 0, 4, 6, 7)
    b.add(
        table(
            "冷库概况 Rooms overview",
            "时间范围内的统计来自 bondwatch_coldchain（与月报同一定义）：时间加权的 MKT、均温、合格率、超限与开门时长。"
            "Window statistics from bondwatch_coldchain (the monthly report's definition): time-weighted MKT, mean, "
            "share of time in range, minutes out of range and with the door open.",
            f"""
            SELECT d.name AS "冷库 room",
                   coalesce(d.profile, '') AS "温控标准 profile",
                   p.min_c AS "下限 min °C",
                   p.max_c AS "上限 max °C",
                   l.temp_c AS "当前 now °C",
                   l.ts AS "最后读数 last reading",
                   c.mkt_c AS "MKT °C",
                   c.mean_c AS "均温 mean °C",
                   c.min_c AS "最低 lowest °C",
                   c.max_c AS "最高 highest °C",
                   c.in_range_pct AS "合格率 in range %",
                   c.out_of_range_s / 60 AS "超限 minutes out",
                   c.door_open_s / 60 AS "开门 door minutes"
            FROM devices d
            LEFT JOIN profiles p ON p.name = d.profile
            {LATEST_TEMP.strip()}
            JOIN bondwatch_coldchain_many(ARRAY[$room]::text[], $__timeFrom()::timestamptz,
                                          $__timeTo()::timestamptz, 'total') AS c ON c.device_id = d.device_id
            WHERE d.kind = 'temp'
            ORDER BY d.device_id
            """,
            overrides=[
                *(override(n, ("unit", "celsius"), ("decimals", 1)) for n in
                  ("下限 min °C", "上限 max °C", "当前 now °C", "MKT °C", "均温 mean °C", "最低 lowest °C",
                   "最高 highest °C")),
                override("合格率 in range %", ("unit", "percent"), ("decimals", 2),
                         ("custom.cellOptions", {"type": "color-text"}),
                         ("thresholds", thresholds((None, "red"), (99, "orange"), (99.9, "green")))),
                override("超限 minutes out", ("unit", "m"), ("decimals", 0)),
                override("开门 door minutes", ("unit", "m"), ("decimals", 0)),
                override("最后读数 last reading", ("unit", "time:MM-DD HH:mm")),
            ],
        ),
        0, 11, 24, 9,
    )
    # One call for every room (bondwatch_coldchain_many), not one per room: 300 rooms read together.
    daily = (
        "bondwatch_coldchain_many(ARRAY[$room]::text[], $__timeFrom()::timestamptz, $__timeTo()::timestamptz, 'day')"
    )
    mkt = timeseries(
        "每日 MKT Daily mean kinetic temperature",
        "每个冷库每个自然日（北京时间）的平均动力学温度，最近 7 天。Mean kinetic temperature per room per local day "
        "(Asia/Shanghai), last 7 days.",
        [
            target(
                f"""
                SELECT c.period_start AS "time", d.name AS metric, c.mkt_c
                FROM {daily} AS c
                JOIN devices d ON d.device_id = c.device_id
                WHERE d.kind = 'temp' AND c.readings > 0
                ORDER BY 1
                """,
                fmt="time_series",
            )
        ],
        unit="celsius",
        decimals=1,
    )
    mkt["timeFrom"] = "7d"
    mkt["fieldConfig"]["defaults"]["custom"]["showPoints"] = "always"
    b.add(mkt, 0, 20, 12, 9)
    door = timeseries(
        "每日开门时长 Door open per day",
        "每个冷库每个自然日门开着的分钟数（时间加权），最近 7 天。Minutes with the door open per room per local day, "
        "last 7 days.",
        [
            target(
                f"""
                SELECT c.period_start AS "time", d.name AS metric, c.door_open_s / 60 AS door_minutes
                FROM {daily} AS c
                JOIN devices d ON d.device_id = c.device_id
                WHERE d.kind = 'temp'
                ORDER BY 1
                """,
                fmt="time_series",
            )
        ],
        unit="m",
        decimals=0,
        bars=True,
    )
    door["timeFrom"] = "7d"
    b.add(door, 12, 20, 12, 9)
    b.add(
        table(
            "超温与预警 Excursions and pre-alarms",
            "与时间范围重叠的温度超限与预警告警（开始于范围前 30 天内）。Temperature excursion and pre-alarm alerts "
            "that overlap the time range (opened at most 30 days before it).",
            """
            SELECT a.opened_at AS "开始 opened",
                   a.cleared_at AS "结束 cleared",
                   d.name AS "冷库 room",
                   bondwatch_alert_type_zh(a.type) AS "类型 type",
                   bondwatch_severity_zh(a.severity) AS "级别 severity",
                   CASE a.status WHEN 'active' THEN '未确认 active' WHEN 'acknowledged' THEN '已确认 acknowledged'
                                 ELSE '已结束 cleared' END AS "状态 status",
                   (a.details ->> 'peak_c')::double precision AS "峰值 peak °C",
                   extract(epoch FROM coalesce(a.cleared_at, $__timeTo()::timestamptz) - a.opened_at) / 60
                       AS "持续 minutes",
                   coalesce(a.details ->> 'message_zh', '') AS "说明 details"
            FROM alerts a
            JOIN devices d ON d.device_id = a.subject_id
            WHERE a.type IN ('temp_excursion', 'temp_pre_alarm') AND a.subject_id IN ($room)
              AND a.opened_at <= $__timeTo()::timestamptz
              AND a.opened_at > $__timeFrom()::timestamptz - interval '30 days'
              AND (a.cleared_at IS NULL OR a.cleared_at >= $__timeFrom()::timestamptz)
            ORDER BY a.opened_at DESC
            """,
            overrides=[
                override("级别 severity", ("mappings", text_map(SEVERITY_TEXT_COLOURS)),
                         ("custom.cellOptions", {"type": "color-text"})),
                override("状态 status", ("mappings", text_map(STATUS_TEXT_COLOURS)),
                         ("custom.cellOptions", {"type": "color-text"})),
                override("峰值 peak °C", ("unit", "celsius"), ("decimals", 1)),
                override("持续 minutes", ("unit", "m"), ("decimals", 0)),
                override("开始 opened", ("unit", "time:MM-DD HH:mm")),
                override("结束 cleared", ("unit", "time:MM-DD HH:mm")),
            ],
        ),
        0, 29, 16, 9,
    )
    b.add(
        barchart(
            "开门次数 Door openings",
            "时间范围内每个冷库的开门次数（门磁从关到开；范围开始时已开着的门计一次）。Door openings per room in the "
            "time range (the contact going from closed to open; a door open when the range begins counts once).",
            """
            SELECT d.name AS "冷库 room", o.openings AS "开门次数 openings"
            FROM bondwatch_door_openings_many(ARRAY[$room]::text[], $__timeFrom()::timestamptz,
                                              $__timeTo()::timestamptz) AS o
            JOIN devices d ON d.device_id = o.device_id
            WHERE d.kind = 'temp'
            ORDER BY d.device_id
            """,
            x_field="冷库 room",
            horizontal=True,
        ),
        16, 29, 8, 9,
    )
    b.add(
        table(
            "离线传感器 Sensors offline",
            "时间范围末尾超过 offline_after_s 没有读数、或有未结束的 sensor_offline 告警的传感器。Sensors silent for "
            "longer than their profile's offline_after_s at the end of the range, or with an open sensor_offline "
            "alert.",
            f"""
            SELECT d.name AS "冷库 room",
                   d.device_id AS "传感器 sensor",
                   l.ts AS "最后读数 last reading",
                   extract(epoch FROM $__timeTo()::timestamptz - l.ts) / 60 AS "静默 minutes silent",
                   coalesce(p.offline_after_s, 600) / 60.0 AS "限值 limit minutes",
                   CASE WHEN o.id IS NOT NULL THEN '告警中 alert open' ELSE '' END AS "告警 alert"
            FROM devices d
            LEFT JOIN profiles p ON p.name = d.profile
            {LATEST_TEMP.strip()}
            LEFT JOIN LATERAL (
                SELECT a.id FROM alerts a
                WHERE a.subject_id = d.device_id AND a.type = 'sensor_offline'
                  AND a.opened_at <= $__timeTo()::timestamptz
                  AND (a.cleared_at IS NULL OR a.cleared_at > $__timeTo()::timestamptz)
                LIMIT 1
            ) AS o ON true
            WHERE d.kind = 'temp' AND d.device_id IN ($room)
              AND (l.ts IS NULL OR o.id IS NOT NULL
                   OR $__timeTo()::timestamptz - l.ts > make_interval(secs => coalesce(p.offline_after_s, 600)))
            ORDER BY l.ts NULLS FIRST
            """,
            overrides=[
                override("静默 minutes silent", ("unit", "m"), ("decimals", 0)),
                override("限值 limit minutes", ("unit", "m"), ("decimals", 0)),
                override("最后读数 last reading", ("unit", "time:MM-DD HH:mm")),
            ],
        ),
        0, 38, 24, 6,
    )
    return b


# --------------------------------------------------------------------------------------------- 3. gates

GATE_NAME = "coalesce(g.name, gp.gate_id)"
REASON_ZH = """CASE r ->> 'code'
                       WHEN 'no_vehicle_tag' THEN '未读到车辆标签 no vehicle tag'
                       WHEN 'several_vehicles' THEN '多车同时通过 several vehicles'
                       WHEN 'no_release_note' THEN '无有效核放单 no release note'
                       WHEN 'bonded_without_note' THEN '保税货物无核放单 bonded goods without note'
                       WHEN 'not_on_note' THEN '货物不在核放单上 goods not on the note'
                       ELSE r ->> 'code' END"""


def gates() -> Board:
    b = Board(
        "bondwatch-gates",
        "卡口与海关 Gates and customs",
        "卡口通行、放行与扣留、核放单使用、排队 Gate passages, pass and hold decisions, release notes, queues",
        ["gates", "customs", "卡口"],
        "now-24h",
        "30s",
    )
    b.variables.append(
        query_variable(
            "gate",
            "卡口 Gate",
            "SELECT id AS __value, name AS __text FROM geofences WHERE kind = 'gate' ORDER BY id",
        )
    )
    b.add(
        stat(
            "通行与核放 Passages and decisions",
            "时间范围内所选卡口的通行次数与出区放行/扣留。Passages at the selected gates in the time range, and the "
            "outbound decisions; pass rate = passes / outbound passages.",
            """
            SELECT count(*) FILTER (WHERE direction = 'in') AS "入区 in",
                   count(*) FILTER (WHERE direction = 'out') AS "出区 out",
                   count(*) FILTER (WHERE decision = 'pass') AS "放行 pass",
                   count(*) FILTER (WHERE decision = 'hold') AS "扣留 hold",
                   100.0 * count(*) FILTER (WHERE decision = 'pass')
                       / nullif(count(*) FILTER (WHERE direction = 'out'), 0) AS "放行率 pass rate"
            FROM gate_passages
            WHERE $__timeFilter(first_read_at) AND gate_id IN ($gate)
            """,
            colours={"入区 in": "blue", "出区 out": "purple", "放行 pass": "green", "扣留 hold": "red",
                     "放行率 pass rate": "dark-green"},
        ),
        0, 0, 16, 4,
    )
    queue = bargauge(
        "排队车辆 Queue now",
        "时间范围末尾在卡口中心 150 米内、车速低于 5 km/h 的车辆数（等候或查验中），10 分钟内有定位的车辆。"
        "Trucks within "
        "150 m of a gate's centre moving slower than 5 km/h (waiting or being checked) at the end of the range; "
        "trucks with a fix in the last 10 minutes.",
        """
        SELECT g.name AS gate, count(s.vehicle_id) AS "排队 queue"
        FROM geofences g
        LEFT JOIN bondwatch_fleet_state($__timeTo()::timestamptz, interval '10 minutes') AS s
          ON coalesce(s.speed_kmh, 0) < 5
         AND bondwatch_distance_m(s.lat, s.lon, bondwatch_fence_centre_lat(g.feature),
                                  bondwatch_fence_centre_lon(g.feature)) <= 150
        WHERE g.kind = 'gate' AND g.id IN ($gate)
        GROUP BY g.id, g.name
        ORDER BY g.id
        """,
        name_field="gate",
        unit="none",
        min_=0,
        max_=6,
        steps=thresholds((None, "green"), (2, "orange"), (4, "red")),
    )
    b.add(queue, 16, 0, 8, 4)
    b.add(
        timeseries(
            "通行量 Passages by gate and direction",
            "每个时间桶内各卡口入区/出区通行次数。Passages per time bucket, per gate and direction.",
            [
                target(
                    f"""
                    SELECT $__timeGroupAlias(gp.first_read_at, $__interval),
                           {GATE_NAME} || CASE gp.direction WHEN 'in' THEN ' 入区 in' ELSE ' 出区 out' END AS metric,
                           count(*) AS passages
                    FROM gate_passages gp
                    LEFT JOIN geofences g ON g.id = gp.gate_id
                    WHERE $__timeFilter(gp.first_read_at) AND gp.gate_id IN ($gate)
                    GROUP BY 1, 2
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            bars=True,
            stack=True,
            decimals=0,
            min_interval="15m",
            max_points=200,
        ),
        0, 4, 12, 9,
    )
    b.add(
        timeseries(
            "每 15 分钟通行 Passages per 15 minutes",
            "每个卡口每 15 分钟的通行次数（卡口负荷；当前排队见右上）。Passages per gate per 15 minutes: the gate's "
            "load (the queue now is top right).",
            [
                target(
                    f"""
                    SELECT $__timeGroupAlias(gp.first_read_at, '15m'), {GATE_NAME} AS metric, count(*) AS passages
                    FROM gate_passages gp
                    LEFT JOIN geofences g ON g.id = gp.gate_id
                    WHERE $__timeFilter(gp.first_read_at) AND gp.gate_id IN ($gate)
                    GROUP BY 1, 2
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            decimals=0,
        ),
        12, 4, 12, 9,
    )
    b.add(
        table(
            "扣留记录 Holds",
            "出区扣留的通行及原因（最新在前，最多 500 条）。Outbound passages held, with their reasons, newest first "
            "(at most 500).",
            f"""
            SELECT gp.first_read_at AS "时间 time",
                   {GATE_NAME} AS "卡口 gate",
                   coalesce(v.plate, gp.vehicle_epc, '未识别 unknown') AS "车牌 plate",
                   (SELECT string_agg(split_part(r ->> 'text', ' / ', 1), '；')
                    FROM jsonb_array_elements(gp.reasons) AS r) AS "原因 reasons",
                   (SELECT string_agg(DISTINCT r ->> 'code', ', ')
                    FROM jsonb_array_elements(gp.reasons) AS r) AS "代码 codes",
                   cardinality(gp.cargo_epcs) AS "货物件数 pallets",
                   coalesce(gp.release_note_id, '') AS "核放单 release note",
                   gp.id AS "通行编号 passage"
            FROM gate_passages gp
            LEFT JOIN vehicles v ON v.vehicle_id = gp.vehicle_id
            LEFT JOIN geofences g ON g.id = gp.gate_id
            WHERE gp.decision = 'hold' AND $__timeFilter(gp.first_read_at) AND gp.gate_id IN ($gate)
            ORDER BY gp.first_read_at DESC
            LIMIT 500
            """,
            overrides=[override("时间 time", ("unit", "time:MM-DD HH:mm:ss"))],
        ),
        0, 13, 16, 9,
    )
    b.add(
        barchart(
            "扣留原因 Hold reasons",
            "时间范围内扣留原因出现的通行次数（一次通行可有多个原因）。Held passages per reason (a passage can have "
            "several).",
            f"""
            SELECT {REASON_ZH} AS "原因 reason",
                   count(DISTINCT gp.id) AS "通行 passages"
            FROM gate_passages gp
            CROSS JOIN LATERAL jsonb_array_elements(gp.reasons) AS r
            WHERE gp.decision = 'hold' AND $__timeFilter(gp.first_read_at) AND gp.gate_id IN ($gate)
            GROUP BY 1
            ORDER BY 2 DESC
            """,
            x_field="原因 reason",
            horizontal=True,
            overrides=[colour("通行 passages", "red")],
        ),
        16, 13, 8, 9,
    )
    b.add(
        table(
            "核放单使用 Release notes used",
            "时间范围内放行时使用的核放单：单上件数、读到件数、单上未读到件数（不扣留，仅报告）。"
            "Release notes used by a "
            "pass in the time range: tags on the note, cargo tags read, and tags on the note not read (reported, "
            "not held).",
            """
            SELECT rn.used_at AS "使用时间 used at",
                   rn.id AS "核放单 release note",
                   coalesce(v.plate, rn.vehicle_id) AS "车牌 plate",
                   coalesce(g.name, gp.gate_id, '') AS "卡口 gate",
                   cardinality(rn.epcs) AS "单上件数 on note",
                   cardinality(gp.cargo_epcs) AS "读到件数 read",
                   cardinality(gp.missing_epcs) AS "未读到 not read",
                   rn.valid_from AS "生效 valid from",
                   rn.valid_until AS "失效 valid until"
            FROM release_notes rn
            LEFT JOIN gate_passages gp ON gp.id = rn.used_passage_id
            LEFT JOIN vehicles v ON v.vehicle_id = rn.vehicle_id
            LEFT JOIN geofences g ON g.id = gp.gate_id
            WHERE rn.used_at IS NOT NULL AND $__timeFilter(rn.used_at)
              AND (gp.gate_id IS NULL OR gp.gate_id IN ($gate))
            ORDER BY rn.used_at DESC
            LIMIT 500
            """,
            overrides=[
                override("使用时间 used at", ("unit", "time:MM-DD HH:mm:ss")),
                override("生效 valid from", ("unit", "time:MM-DD HH:mm")),
                override("失效 valid until", ("unit", "time:MM-DD HH:mm")),
            ],
        ),
        0, 22, 24, 9,
    )
    return b


# --------------------------------------------------------------------------------------------- 4. alerts

SUBJECT_JOINS = """
    LEFT JOIN vehicles v ON a.subject_kind = 'vehicle' AND v.vehicle_id = a.subject_id
    LEFT JOIN devices d ON a.subject_kind = 'device' AND d.device_id = a.subject_id
    LEFT JOIN geofences g ON a.subject_kind = 'gate' AND g.id = a.subject_id"""
SUBJECT = "coalesce(v.plate, d.name, g.name, a.subject_id)"


SEVERITIES = (
    ("critical", "紧急 critical"),
    ("major", "重要 major"),
    ("minor", "次要 minor"),
    ("warning", "提示 warning"),
)
MEDIAN_TTA = "percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM acked_at - raised_at))"


def severity_columns(expr: str = "severity", aggregate: str = "count(*)") -> str:
    """One column per severity: ``aggregate`` over the rows of that severity."""
    return ",\n       ".join(
        f"{aggregate} FILTER (WHERE {expr} = '{s}') AS \"{label}\"" for s, label in SEVERITIES
    )


SEVERITY_OVERRIDES = [colour(label, c) for label, c in SEVERITY_TEXT_COLOURS.items()]


def alerts() -> Board:
    b = Board(
        "bondwatch-alerts",
        "告警与待办 Alerts and to-dos",
        "未关闭告警（未确认优先）、按时长与级别、确认用时、按类型统计 Open alerts (unacknowledged first), by age and "
        "severity, time to acknowledge, counts by type",
        ["alerts", "告警"],
        "now-7d",
        "30s",
    )
    b.add(
        stat(
            "待办 To do now",
            "当前未关闭的告警（与时间范围无关）。Alerts open now, whatever the time range.",
            """
            SELECT count(*) AS "未关闭 open",
                   count(*) FILTER (WHERE status = 'active') AS "未确认 unacknowledged",
                   count(*) FILTER (WHERE severity = 'critical') AS "紧急 critical",
                   coalesce(max(extract(epoch FROM now() - opened_at)) FILTER (WHERE status = 'active'), 0) / 60
                       AS "最久未确认 oldest unacknowledged"
            FROM alerts
            WHERE status <> 'cleared'
            """,
            colours={"未关闭 open": "orange", "未确认 unacknowledged": "red", "紧急 critical": "dark-red",
                     "最久未确认 oldest unacknowledged": "purple"},
        ),
        0, 0, 16, 4,
    )
    tta = stat(
        "确认用时中位数 Median time to acknowledge",
        "时间范围内被确认的告警，从平台产生（raised_at）到确认（acked_at）的中位数，按级别。Median time from raised_at "
        "(the platform wrote the alert) to acked_at, for alerts acknowledged in the time range, per severity.",
        f"""
        SELECT {severity_columns(aggregate=MEDIAN_TTA)}
        FROM alerts
        WHERE acked_at IS NOT NULL AND $__timeFilter(acked_at) AND acked_at >= raised_at
        """,
        unit="s",
        decimals=None,
        colours=dict(zip(SEVERITY_TEXT_COLOURS, SEVERITY_COLOURS.values(), strict=True)),
    )
    b.add(tta, 16, 0, 8, 4)
    b.add(
        table(
            "待办告警 Open alerts",
            "未关闭的告警：未确认的在前，其次按级别、开始时间。Open alerts: unacknowledged first, then by severity and "
            "age. Acknowledge or resolve through the API (POST /api/v1/alerts/{id}/ack).",
            f"""
            SELECT CASE a.status WHEN 'active' THEN '未确认 active' ELSE '已确认 acknowledged' END AS "状态 status",
                   bondwatch_severity_zh(a.severity) AS "级别 severity",
                   bondwatch_alert_type_zh(a.type) AS "类型 type",
                   {SUBJECT} AS "对象 subject",
                   a.opened_at AS "开始 opened",
                   extract(epoch FROM now() - a.opened_at) / 60 AS "时长 age",
                   a.escalation_level AS "升级 escalations",
                   coalesce(a.acked_by, '') AS "确认人 acknowledged by",
                   coalesce(a.details ->> 'message_zh', '') AS "说明 details",
                   a.id AS "编号 id"
            FROM alerts a
            {SUBJECT_JOINS.strip()}
            WHERE a.status <> 'cleared'
            ORDER BY (a.status = 'active') DESC, bondwatch_severity_rank(a.severity), a.opened_at
            """,
            overrides=[
                override("状态 status", ("mappings", text_map(STATUS_TEXT_COLOURS)),
                         ("custom.cellOptions", {"type": "color-background"})),
                override("级别 severity", ("mappings", text_map(SEVERITY_TEXT_COLOURS)),
                         ("custom.cellOptions", {"type": "color-text"})),
                override("时长 age", ("unit", "m"), ("decimals", 0)),
                override("开始 opened", ("unit", "time:MM-DD HH:mm")),
            ],
        ),
        0, 4, 24, 10,
    )
    b.add(
        barchart(
            "按时长与级别 Open alerts by age and severity",
            "当前未关闭的告警按已持续时长分组、按级别堆叠。Open alerts by how long they have been open, stacked by "
            "severity.",
            f"""
            WITH o AS (
                SELECT severity, now() - opened_at AS age FROM alerts WHERE status <> 'cleared'
            ),
            b(rank, label, lo, hi) AS (
                VALUES (1, '< 15 分钟 min', interval '0', interval '15 minutes'),
                       (2, '15–60 分钟 min', interval '15 minutes', interval '1 hour'),
                       (3, '1–4 小时 h', interval '1 hour', interval '4 hours'),
                       (4, '4–24 小时 h', interval '4 hours', interval '1 day'),
                       (5, '> 1 天 day', interval '1 day', NULL)
            )
            SELECT b.label AS "时长 age",
                   {severity_columns("o.severity")}
            FROM b
            LEFT JOIN o ON o.age >= b.lo AND (b.hi IS NULL OR o.age < b.hi)
            GROUP BY b.rank, b.label
            ORDER BY b.rank
            """,
            x_field="时长 age",
            stack=True,
            overrides=SEVERITY_OVERRIDES,
        ),
        0, 14, 12, 9,
    )
    b.add(
        barchart(
            "按类型 Alerts by type",
            "时间范围内产生的告警按类型、级别统计。Alerts opened in the time range per type, stacked by severity.",
            f"""
            SELECT bondwatch_alert_type_zh(type) AS "类型 type",
                   {severity_columns()}
            FROM alerts
            WHERE $__timeFilter(opened_at)
            GROUP BY type
            ORDER BY count(*) DESC
            """,
            x_field="类型 type",
            horizontal=True,
            stack=True,
            overrides=SEVERITY_OVERRIDES,
        ),
        12, 14, 12, 9,
    )
    b.add(
        timeseries(
            "确认用时 Time to acknowledge",
            "每个时间桶内被确认告警的平均与最长确认用时（acked_at − raised_at）。Mean and longest time from raised_at "
            "to acked_at of the alerts acknowledged in each time bucket.",
            [
                target(
                    """
                    SELECT $__timeGroupAlias(acked_at, $__interval),
                           avg(extract(epoch FROM acked_at - raised_at)) AS "平均 mean",
                           max(extract(epoch FROM acked_at - raised_at)) AS "最长 longest"
                    FROM alerts
                    WHERE acked_at IS NOT NULL AND $__timeFilter(acked_at) AND acked_at >= raised_at
                    GROUP BY 1
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            unit="s",
            min_interval="1h",
            max_points=200,
        ),
        0, 23, 12, 9,
    )
    b.add(
        timeseries(
            "告警趋势 Alerts opened",
            "每个时间桶内产生的告警数，按级别。Alerts opened per time bucket, by severity.",
            [
                target(
                    """
                    SELECT $__timeGroupAlias(opened_at, $__interval), bondwatch_severity_zh(severity) AS metric,
                           count(*) AS alerts
                    FROM alerts
                    WHERE $__timeFilter(opened_at)
                    GROUP BY 1, 2
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            bars=True,
            stack=True,
            decimals=0,
            min_interval="1h",
            max_points=200,
            overrides=SEVERITY_OVERRIDES,
        ),
        12, 23, 12, 9,
    )
    b.add(
        table(
            "处理记录 Alert history",
            "时间范围内告警的每次变化（产生、确认、升级、结束、处置），最新在前，最多 200 条。"
            "Every change of an alert in "
            "the time range, newest first (at most 200).",
            f"""
            SELECT e.at AS "时间 time",
                   CASE e.event WHEN 'opened' THEN '产生 opened' WHEN 'acknowledged' THEN '确认 acknowledged'
                                WHEN 'resolved' THEN '处置 resolved' WHEN 'cleared' THEN '结束 cleared'
                                WHEN 'escalated' THEN '升级 escalated' ELSE e.event END AS "事件 event",
                   coalesce(e.actor, '') AS "操作人 by",
                   bondwatch_severity_zh(a.severity) AS "级别 severity",
                   bondwatch_alert_type_zh(a.type) AS "类型 type",
                   {SUBJECT} AS "对象 subject",
                   coalesce(e.note, '') AS "备注 note",
                   a.id AS "告警 alert id"
            FROM alert_events e
            JOIN alerts a ON a.id = e.alert_id
            {SUBJECT_JOINS.strip()}
            WHERE $__timeFilter(e.at)
            ORDER BY e.at DESC
            LIMIT 200
            """,
            overrides=[
                override("时间 time", ("unit", "time:MM-DD HH:mm:ss")),
                override("级别 severity", ("mappings", text_map(SEVERITY_TEXT_COLOURS)),
                         ("custom.cellOptions", {"type": "color-text"})),
            ],
        ),
        0, 32, 24, 9,
    )
    return b


# --------------------------------------------------------------------------------------------- 5. zero carbon

# The emission factors, as dashboard variables: docs/dashboards.md gives each one's source.
FACTORS = """
    f AS (
        SELECT ${diesel_l_per_100km:sqlstring}::double precision / 100 AS diesel_l_per_km,
               ${diesel_kg_co2_per_l:sqlstring}::double precision AS diesel_kg_per_l,
               ${grid_kg_co2_per_kwh:sqlstring}::double precision AS grid_kg_per_kwh,
               ${charge_efficiency:sqlstring}::double precision AS charge_efficiency,
               ${h2_kg_co2_per_kg:sqlstring}::double precision AS h2_kg_per_kg
    )"""
# CO2 of what the fleet did (kg): a battery truck's pack energy drawn from the grid through the charger,
# a fuel-cell truck's hydrogen by its production route; and of a diesel truck driving the same km.
ACTUAL_KG = "(coalesce(u.kwh, 0) / f.charge_efficiency * f.grid_kg_per_kwh + coalesce(u.h2_kg, 0) * f.h2_kg_per_kg)"
BASELINE_KG = "(coalesce(u.km, 0) * f.diesel_l_per_km * f.diesel_kg_per_l)"
# CO2 avoided, two figures (as the monthly report gives them, docs/reports.md): tailpipe (直接减排, direct,
# scope 1) is the whole baseline, since the trucks emit nothing from an exhaust; net (净减排, well to wheel)
# takes off the energy supply's CO2, so it follows the grid and hydrogen factors and can be negative.
TAILPIPE_AVOIDED_KG = BASELINE_KG
NET_AVOIDED_KG = f"({BASELINE_KG} - {ACTUAL_KG})"
# Net below zero shows red: with the chosen factors the energy supply emitted more than diesel trucks would have.
# (Column names stay under PostgreSQL's 63 bytes, a CJK character being 3: longer ones are cut, and the
# overrides that name them no longer match.)
NET_STEPS = thresholds((None, "red"), (0, "green"))


GOODS_STATUS = """,
                   CASE customs_status WHEN 'bonded' THEN '保税 bonded' WHEN 'non_bonded' THEN '非保税 non-bonded'
                                       ELSE '未登记 unknown' END AS "海关状态 customs status",
                   count(*) AS "车次 loads"
"""


def zero_carbon() -> Board:
    b = Board(
        "bondwatch-zero-carbon",
        "零碳短驳 Zero-carbon short-haul",
        "里程、电耗、氢耗、相对柴油车的二氧化碳直接减排与净减排、按货物统计的运量 Distance, electricity, hydrogen, "
        "tailpipe and net CO2 avoided against diesel trucks, and loads moved by goods class",
        ["energy", "co2", "零碳"],
        "now-30d",
        "5m",
    )
    b.variables += [
        number_variable(
            "diesel_l_per_100km",
            "柴油车油耗 Diesel L/100 km",
            "35",
            "被替代的柴油牵引车油耗（升/百公里）。Fuel use of the diesel tractor the fleet replaces, L/100 km.",
        ),
        number_variable(
            "diesel_kg_co2_per_l",
            "柴油排放因子 Diesel kg CO₂/L",
            "2.68",
            "每升柴油燃烧的二氧化碳（IPCC 2006）。CO2 per litre of diesel burnt (IPCC 2006 defaults).",
        ),
        choice_variable(
            "grid_kg_co2_per_kwh",
            "电网排放因子 Grid kg CO₂/kWh",
            [
                ("内蒙古 2022 Inner Mongolia", "0.6849"),
                ("华北电网 2022 North China grid", "0.6776"),
                ("全国平均 2022 national average", "0.5366"),
                ("绿电 certified renewable", "0"),
            ],
            "生态环境部、国家统计局 2022 年电力二氧化碳排放因子。MEE/NBS electricity CO2 factors for 2022.",
        ),
        number_variable(
            "charge_efficiency",
            "充电效率 Charging efficiency",
            "0.92",
            "电网到电池的直流快充效率。Grid-to-pack efficiency of DC fast charging.",
        ),
        choice_variable(
            "h2_kg_co2_per_kg",
            "制氢排放因子 Hydrogen kg CO₂/kg",
            [
                ("煤制氢 coal gasification", "22"),
                ("天然气重整 natural-gas reforming", "11"),
                ("可再生能源电解水 renewable electrolysis", "1"),
            ],
            "每千克氢的生产排放（IEA 2023）。CO2 of producing 1 kg of hydrogen, by route (IEA 2023).",
        ),
    ]
    usage_total = "bondwatch_fleet_usage($__timeFrom()::timestamptz, $__timeTo()::timestamptz, 'total')"
    usage_daily = "bondwatch_fleet_usage($__timeFrom()::timestamptz, $__timeTo()::timestamptz, 'day')"
    b.add(
        stat(
            "累计 Totals",
            "时间范围内：里程与能耗来自车载终端的累计计数器（里程表、电池放电量、氢耗）；"
            "直接减排 = 同里程柴油车尾气排放（车辆尾气零排放）；净减排 = 直接减排 − 电网与制氢排放（因子见上方变量），"
            "为负时表示按所选因子能源生产的排放多于柴油车。In the time range: distance and energy from the trucks' "
            "cumulative counters; tailpipe CO2 avoided = a diesel truck's CO2 over the same km (the trucks emit "
            "nothing from an exhaust); net CO2 avoided = tailpipe − the grid's and the hydrogen production's CO2 "
            "(factors are the variables above), negative (red) when with the chosen factors the energy supply "
            "emitted more than diesel trucks would have.",
            f"""
            WITH u AS (SELECT * FROM {usage_total}),
            {FACTORS.strip()}
            SELECT sum(u.km) AS "里程 km",
                   sum(u.kwh) AS "电耗 kWh",
                   sum(u.h2_kg) AS "氢耗 H₂ kg",
                   sum(u.kwh) FILTER (WHERE u.powertrain = 'bev')
                       / nullif(sum(u.km) FILTER (WHERE u.powertrain = 'bev'), 0) AS "纯电 kWh/km",
                   sum({TAILPIPE_AVOIDED_KG}) / 1000 AS "CO₂ 直接减排 tailpipe avoided t",
                   sum({NET_AVOIDED_KG}) / 1000 AS "CO₂ 净减排 net avoided t",
                   sum(u.km * f.diesel_l_per_km) AS "替代柴油 diesel avoided L"
            FROM u CROSS JOIN f
            """,
            decimals=None,
            colours={"里程 km": "blue", "电耗 kWh": "yellow", "氢耗 H₂ kg": "purple", "纯电 kWh/km": "orange",
                     "CO₂ 直接减排 tailpipe avoided t": "green", "替代柴油 diesel avoided L": "dark-green"},
            overrides=[override("CO₂ 净减排 net avoided t", ("color", {"mode": "thresholds"}),
                                ("thresholds", NET_STEPS))],
        ),
        0, 0, 24, 4,
    )
    b.add(
        timeseries(
            "每日里程与能耗 Daily distance and energy",
            "每个自然日（北京时间）全车队的里程、电耗、氢耗。Fleet distance, electricity and hydrogen per local day.",
            [
                target(
                    f"""
                    SELECT u.period_start AS "time", sum(u.km) AS "里程 km", sum(u.kwh) AS "电耗 kWh",
                           sum(u.h2_kg) AS "氢耗 H₂ kg"
                    FROM {usage_daily} AS u
                    GROUP BY 1
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            bars=True,
            decimals=0,
            overrides=[
                override("里程 km", ("unit", "lengthkm"), ("color", {"mode": "fixed", "fixedColor": "blue"})),
                override("电耗 kWh", ("unit", "kwatth"), ("color", {"mode": "fixed", "fixedColor": "yellow"})),
                override("氢耗 H₂ kg", ("unit", "masskg"), ("custom.axisPlacement", "right"),
                         ("color", {"mode": "fixed", "fixedColor": "purple"})),
            ],
        ),
        0, 4, 12, 9,
    )
    b.add(
        timeseries(
            "每日二氧化碳 Daily CO₂",
            "每个自然日：同里程柴油车排放（基准，即直接减排）、车队能源生产排放（电网+制氢）、净减排（两者之差）。"
            "Per local day: a diesel truck's CO2 over the same km (the baseline, which is the tailpipe CO2 avoided), "
            "the fleet's energy supply CO2 (grid + hydrogen production), and the net CO2 avoided (the difference).",
            [
                target(
                    f"""
                    WITH u AS (SELECT * FROM {usage_daily}),
                    {FACTORS.strip()}
                    SELECT u.period_start AS "time",
                           sum({BASELINE_KG}) / 1000 AS "直接减排（柴油基准） tailpipe (diesel baseline)",
                           sum({ACTUAL_KG}) / 1000 AS "能源生产 energy supply",
                           sum({NET_AVOIDED_KG}) / 1000 AS "净减排 net avoided"
                    FROM u CROSS JOIN f
                    GROUP BY 1
                    ORDER BY 1
                    """,
                    fmt="time_series",
                )
            ],
            unit="masst",
            decimals=2,
            overrides=[
                colour("直接减排（柴油基准） tailpipe (diesel baseline)", "#808080"),
                colour("能源生产 energy supply", "orange"),
                override("净减排 net avoided", ("color", {"mode": "fixed", "fixedColor": "green"}),
                         ("custom.fillOpacity", 30)),
            ],
        ),
        12, 4, 12, 9,
    )
    b.add(
        table(
            "车辆能耗 Per truck",
            "时间范围内每辆车的里程、能耗与二氧化碳（直接减排与净减排）。"
            "Distance, energy and CO2 per truck in the time range, with tailpipe and net CO2 avoided.",
            f"""
            WITH u AS (SELECT * FROM {usage_total}),
            {FACTORS.strip()}
            SELECT u.plate AS "车牌 plate",
                   CASE u.powertrain WHEN 'bev' THEN '纯电动 battery-electric'
                                     WHEN 'fcev' THEN '氢燃料电池 fuel cell' ELSE '' END AS "动力 powertrain",
                   u.km AS "里程 km",
                   u.kwh AS "电耗 kWh",
                   u.kwh / nullif(u.km, 0) AS "kWh/km",
                   u.h2_kg AS "氢耗 H₂ kg",
                   100 * u.h2_kg / nullif(u.km, 0) AS "H₂ kg/100 km",
                   {ACTUAL_KG} AS "能源生产 CO₂ kg",
                   {BASELINE_KG} AS "柴油基准 CO₂ kg",
                   {TAILPIPE_AVOIDED_KG} AS "直接减排 tailpipe avoided kg",
                   {NET_AVOIDED_KG} AS "净减排 net avoided kg"
            FROM u CROSS JOIN f
            ORDER BY u.plate
            """,
            overrides=[
                *(override(n, ("decimals", 1)) for n in ("里程 km", "电耗 kWh", "氢耗 H₂ kg")),
                *(override(n, ("decimals", 2)) for n in ("kWh/km", "H₂ kg/100 km")),
                *(override(n, ("decimals", 0))
                  for n in ("能源生产 CO₂ kg", "柴油基准 CO₂ kg", "直接减排 tailpipe avoided kg")),
                override("净减排 net avoided kg", ("decimals", 0), ("custom.cellOptions", {"type": "color-text"}),
                         ("thresholds", NET_STEPS)),
            ],
        ),
        0, 13, 14, 10,
    )
    # Each passage carries its goods by class (gate_passages.goods, migration 0008: the tags as registered now),
    # so a month is a read of one column per passage, not a join of every pallet to the registry.
    goods = """
            WITH per_load AS (
                SELECT gp.id, g.description, g.customs_status,
                       CASE WHEN gp.direction = 'out' AND gp.decision = 'pass' THEN g.pallets ELSE 0 END
                           AS pallets_out,
                       CASE WHEN gp.direction = 'in' THEN g.pallets ELSE 0 END AS pallets_in
                FROM gate_passages gp
                CROSS JOIN LATERAL unnest(gp.goods) AS g
                WHERE $__timeFilter(gp.first_read_at)
            )
            SELECT coalesce(description, '未登记标签 unregistered tag') AS "货物 goods",
                   sum(pallets_out) AS "出区件数 pallets out",
                   sum(pallets_in) AS "入区件数 pallets in"{extra}
            FROM per_load
            GROUP BY {group}
            ORDER BY 2 DESC, 1
            """
    b.add(
        barchart(
            "运量 Loads by goods class",
            "时间范围内经卡口的货物托盘数，按标签登记的品名（货物类别），出区只计放行。"
            "Pallets through the gates in the "
            "time range by the goods class registered on their tag (tags.description); outbound counts passes only.",
            goods.format(extra="", group="1"),
            x_field="货物 goods",
            horizontal=True,
            stack=True,
            overrides=[colour("出区件数 pallets out", "purple"), colour("入区件数 pallets in", "blue")],
        ),
        14, 13, 10, 10,
    )
    b.add(
        table(
            "货物明细 Goods moved",
            "按品名与海关状态（保税/非保税）统计的托盘数与车次。Pallets and loads (passages carrying them) by goods "
            "class and customs status.",
            goods.format(extra=GOODS_STATUS, group="1, 4"),
        ),
        0, 23, 14, 8,
    )
    b.add(
        text(
            "排放因子 Emission factors",
            """
            **直接减排 tailpipe CO₂ avoided** (direct, scope 1) = 里程 km × 柴油车油耗 × 柴油排放因子

            **净减排 net CO₂ avoided** (well to wheel) = 直接减排
            − 电耗 kWh ÷ 充电效率 × 电网排放因子 − 氢耗 kg × 制氢排放因子

            净减排为负（红色）：按所选电网与制氢因子，能源生产的排放多于柴油车尾气排放。
            Net below zero (red): with the chosen grid and hydrogen factors the energy supply emits more than a
            diesel truck would. The factors are the variables `grid_kg_co2_per_kwh`, `charge_efficiency`,
            `h2_kg_co2_per_kg` (the report's `BONDWATCH_REPORT_*`).

            | 因子 factor | 默认 default | 来源 source |
            |---|---|---|
            | 柴油车油耗 diesel truck | 35 L/100 km | same duty in diesel; ICCT 2015: 31 (EU) – 44 (China) L/100 km |
            | 柴油 diesel | 2.68 kg CO₂/L | IPCC 2006 Vol. 2: 74.1 t CO₂/TJ × 43.0 TJ/kt × 0.84 kg/L |
            | 电网 grid | 0.6849 kg CO₂/kWh | 生态环境部 国家统计局 2022年电力二氧化碳排放因子: 内蒙古 |
            | 充电效率 charging | 0.92 | DC fast charging, grid to pack |
            | 制氢 hydrogen | 22 kg CO₂/kg | IEA 2023: unabated coal gasification 22–26 (low end) |

            电耗是车载电池的放电量（不含充电损耗），氢耗是燃料电池车的累计耗氢量。
            Change the factors with the variables at the top; docs/dashboards.md explains each source.
            """,
        ),
        14, 23, 10, 8,
    )
    return b


BOARDS = {
    "fleet.json": fleet,
    "coldstore.json": coldstore,
    "gates.json": gates,
    "alerts.json": alerts,
    "zero-carbon.json": zero_carbon,
}


def render() -> dict[str, str]:
    return {name: json.dumps(make().json(), ensure_ascii=False, indent=2) + "\n" for name, make in BOARDS.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, content in render().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                stale.append(name)
        else:
            path.write_text(content, encoding="utf-8")
    if stale:
        print(f"out of date (run dashboards/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
