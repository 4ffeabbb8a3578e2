"""The report as CSV: one figure per row (long format), so it opens in any spreadsheet and pivots freely.

Columns: ``section, period, subject, name, metric, value, unit, label``. ``period`` is the month
(``2026-10``) or a local day (``2026-10-03``); ``subject`` is what the figure is about (a device, a gate,
an alert type and severity, ``site``); ``label`` names the metric in Chinese and English. Every number of
the JSON report is here once, with the same value. UTF-8 with a byte-order mark: Excel on a Chinese
Windows otherwise reads the file as GBK and garbles the names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

HEADER = ("section", "period", "subject", "name", "metric", "value", "unit", "label")

# metric -> (unit, 中文, English)
METRICS: dict[str, tuple[str, str, str]] = {
    "site": ("", "园区", "site"),
    "month": ("", "月份", "month"),
    "from": ("", "起始时间", "from"),
    "to": ("", "截止时间", "to"),
    "until": ("", "数据截至", "data until"),
    "complete": ("", "整月", "complete month"),
    "generated_at": ("", "生成时间", "generated at"),
    "rooms": ("", "冷库数", "cold rooms"),
    "in_range_pct": ("%", "温度合格率", "time in range"),
    "excursions": ("", "超温次数", "excursions"),
    "excursion_s": ("s", "超温时长", "excursion time"),
    "alerts": ("", "告警数", "alerts"),
    "critical_alerts": ("", "紧急告警数", "critical alerts"),
    "ack_median_s": ("s", "确认用时中位数", "median time to acknowledge"),
    "ack_p90_s": ("s", "确认用时90分位", "p90 time to acknowledge"),
    "clear_median_s": ("s", "解除用时中位数", "median time to clear"),
    "clear_p90_s": ("s", "解除用时90分位", "p90 time to clear"),
    "passages_in": ("", "入区通行", "inbound passages"),
    "passages_out": ("", "出区通行", "outbound passages"),
    "holds": ("", "拦截次数", "holds"),
    "vehicles": ("", "车辆数", "vehicles"),
    "active_vehicles": ("", "出车车辆数", "active vehicles"),
    "bev": ("", "纯电动车辆", "battery-electric vehicles"),
    "fcev": ("", "氢燃料电池车辆", "fuel-cell vehicles"),
    "km": ("km", "行驶里程", "distance"),
    "bev_km": ("km", "纯电动里程", "battery-electric distance"),
    "fcev_km": ("km", "氢燃料电池里程", "fuel-cell distance"),
    "energy_kwh": ("kWh", "耗电量", "energy"),
    "h2_kg": ("kg", "耗氢量", "hydrogen"),
    "kwh_per_km": ("kWh/km", "单位里程电耗", "energy per km"),
    "h2_kg_per_100km": ("kg/100km", "百公里氢耗", "hydrogen per 100 km"),
    "co2_baseline_kg": ("kg", "柴油车基准排放", "diesel baseline CO2"),
    "co2_actual_kg": ("kg", "能源生产排放", "energy supply CO2"),
    # Two figures of CO2 avoided: net (well to wheel; keeps the key co2_avoided_kg) and tailpipe (direct).
    "co2_avoided_kg": ("kg", "二氧化碳净减排量", "net CO2 avoided (well to wheel)"),
    "co2_avoided_bev_kg": ("kg", "纯电动车净减排量", "net CO2 avoided by battery-electric trucks"),
    "co2_avoided_fcev_kg": ("kg", "氢燃料电池车净减排量", "net CO2 avoided by fuel-cell trucks"),
    "co2_avoided_tailpipe_kg": ("kg", "二氧化碳直接减排量", "tailpipe CO2 avoided (direct)"),
    "co2_avoided_tailpipe_bev_kg": ("kg", "纯电动车直接减排量", "tailpipe CO2 avoided by battery-electric trucks"),
    "co2_avoided_tailpipe_fcev_kg": ("kg", "氢燃料电池车直接减排量", "tailpipe CO2 avoided by fuel-cell trucks"),
    "odometer_resets": ("", "里程表重置次数", "odometer resets"),
    "glitches": ("", "异常跳变次数", "counter glitches"),
    "powertrain": ("", "动力类型", "powertrain"),
    "plate": ("", "车牌", "plate"),
    "vehicle_id": ("", "车辆编号", "vehicle"),
    "device_id": ("", "设备编号", "device"),
    "profile": ("", "温控方案", "profile"),
    "min_c": ("°C", "温度下限", "lower limit"),
    "max_c": ("°C", "温度上限", "upper limit"),
    "readings": ("", "数据条数", "readings"),
    "covered_s": ("s", "数据覆盖时长", "time covered"),
    "in_range_s": ("s", "合格时长", "time in range"),
    "above_s": ("s", "超上限时长", "time above"),
    "below_s": ("s", "低于下限时长", "time below"),
    "mean_c": ("°C", "时间加权平均温度", "time-weighted mean"),
    "lowest_c": ("°C", "最低温度", "lowest"),
    "highest_c": ("°C", "最高温度", "highest"),
    "mkt_c": ("°C", "平均动力学温度", "mean kinetic temperature"),
    "door_open_s": ("s", "开门时长", "door open"),
    "direction": ("", "方向", "direction"),
    "limit_c": ("°C", "限值", "limit"),
    "peak_c": ("°C", "峰值", "peak"),
    "started_at": ("", "开始时间", "started"),
    "ended_at": ("", "结束时间", "ended"),
    "duration_s": ("s", "持续时长", "duration"),
    "status": ("", "状态", "status"),
    "opened": ("", "告警数", "opened"),
    "acknowledged": ("", "已确认", "acknowledged"),
    "cleared": ("", "已解除", "cleared"),
    "resolved_by_person": ("", "人工处置", "resolved by a person"),
    "open_at_end": ("", "期末未解除", "open at the end"),
    "inbound": ("", "入区", "inbound"),
    "outbound": ("", "出区", "outbound"),
    "passed": ("", "放行", "passed"),
    "held": ("", "拦截", "held"),
    "passages": ("", "通行次数", "passages"),
    "gate_id": ("", "卡口", "gate"),
    "at": ("", "时间", "time"),
    "release_note_id": ("", "核放单", "release note"),
    "reasons": ("", "拦截原因", "reasons"),
    "kind": ("", "设备类型", "device kind"),
    "median_interval_s": ("s", "上报间隔中位数", "median interval"),
    "limit_s": ("s", "离线判定时长", "silence limit"),
    "uptime_pct": ("%", "在线率", "uptime"),
    "cadence_s": ("s", "应报间隔", "expected interval"),
    "expected": ("", "应收条数", "readings expected"),
    "received": ("", "实收条数", "readings received"),
    "completeness_pct": ("%", "数据完整率", "completeness"),
    "devices": ("", "设备数", "devices"),
    "diesel_l_per_100km": ("L/100km", "柴油车百公里油耗", "diesel truck consumption"),
    "diesel_kg_co2_per_l": ("kg/L", "柴油排放因子", "diesel CO2 factor"),
    "grid_kg_co2_per_kwh": ("kg/kWh", "电网排放因子", "grid CO2 factor"),
    "charging_efficiency": ("", "充电效率", "charging efficiency"),
    "h2_kg_co2_per_kg": ("kg/kg", "氢气排放因子", "hydrogen CO2 factor"),
    "critical": ("", "紧急", "critical"),
    "major": ("", "重要", "major"),
    "minor": ("", "次要", "minor"),
    "warning": ("", "提示", "warning"),
    "no_vehicle_tag": ("", "未读到车辆标签", "no vehicle tag read"),
    "several_vehicles": ("", "同时读到多辆车", "several vehicles read"),
    "no_release_note": ("", "无有效核放单", "no valid release note"),
    "bonded_without_note": ("", "保税货物无核放单", "bonded goods without a note"),
    "not_on_note": ("", "货物不在核放单上", "cargo not on the note"),
}
ROOM_METRICS = (
    "profile", "min_c", "max_c", "readings", "covered_s", "in_range_s", "above_s", "below_s", "in_range_pct",
    "mean_c", "lowest_c", "highest_c", "mkt_c", "door_open_s", "excursions", "excursion_s",
)  # fmt: skip
EXCURSION_METRICS = ("device_id", "direction", "limit_c", "peak_c", "started_at", "ended_at", "duration_s", "status")
ALERT_METRICS = (
    "opened", "acknowledged", "cleared", "resolved_by_person", "open_at_end",
    "ack_median_s", "ack_p90_s", "clear_median_s", "clear_p90_s",
)  # fmt: skip
GATE_METRICS = ("inbound", "outbound", "passed", "held")
HOLD_METRICS = ("gate_id", "at", "vehicle_id", "release_note_id", "reasons")
VEHICLE_METRICS = (
    "device_id", "plate", "powertrain", "km", "energy_kwh", "h2_kg", "kwh_per_km", "h2_kg_per_100km",
    "co2_baseline_kg", "co2_actual_kg", "co2_avoided_kg", "co2_avoided_tailpipe_kg", "odometer_resets", "glitches",
)  # fmt: skip
DEVICE_METRICS = (
    "kind", "readings", "median_interval_s", "limit_s", "covered_s", "uptime_pct", "cadence_s", "expected",
    "completeness_pct",
)  # fmt: skip
Line = tuple[str, str, str, str, str, Any]


def value_text(value: Any) -> str:
    """How a JSON value is written: numbers as JSON writes them, lists joined with ';', null empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def lines(report: dict[str, Any]) -> Iterator[Line]:
    month = report["month"]
    for key in ("from", "to", "until", "complete", "seconds"):
        if key != "seconds":
            yield ("report", month, "site", report["site"]["id"], key, report["period"][key])
    yield ("report", month, "site", report["site"]["id"], "generated_at", report["generated_at"])
    site_name = f"{report['site']['name_zh']} {report['site']['name_en']}"
    for key, value in report["summary"].items():
        if isinstance(value, dict):
            for kind, v in value.items():
                yield ("summary", month, kind, site_name, key, v)
        else:
            yield ("summary", month, "site", site_name, key, value)

    cold = report["coldchain"]
    for room in cold["rooms"]:
        for key in ROOM_METRICS:
            yield ("room", month, room["device_id"], room["name"], key, room[key])
    names = {room["device_id"]: room["name"] for room in cold["rooms"]}
    for day in cold["daily"]:
        yield ("room_daily", day["date"], "site", site_name, "in_range_pct", day["in_range_pct"])
        for dev, pct in day["rooms"].items():
            yield ("room_daily", day["date"], dev, names.get(dev, dev), "in_range_pct", pct)
    for e in cold["excursions"]:
        for key in EXCURSION_METRICS:
            yield ("excursion", month, str(e["alert_id"]), e["name"], key, e[key])

    alerts = report["alerts"]
    for a in alerts["by_type"]:
        for key in ALERT_METRICS:
            yield ("alert", month, f"{a['type']}/{a['severity']}", "", key, a[key])
    for a in alerts["by_severity"]:
        for key in ALERT_METRICS:
            yield ("alert_severity", month, a["severity"], "", key, a[key])
    for key in ALERT_METRICS:
        if key in alerts["total"]:
            yield ("alert_total", month, "site", site_name, key, alerts["total"][key])
    for day in alerts["daily"]:
        for key, value in day.items():
            if key != "date":
                yield ("alert_daily", day["date"], key, "", "opened", value)

    gates = report["gates"]
    for g in gates["by_gate"]:
        for key in GATE_METRICS:
            yield ("gate", month, g["gate_id"], g["name"], key, g[key])
    for r in gates["hold_reasons"]:
        yield ("hold_reason", month, r["gate_id"], "", r["code"], r["passages"])
    for h in gates["holds"]:
        for key in HOLD_METRICS:
            yield ("hold", month, h["passage_id"], "", key, h[key])
    for day in gates["daily"]:
        for key in ("inbound", "outbound"):
            yield ("passage_daily", day["date"], "site", site_name, key, day[key])

    fleet = report["fleet"]
    for v in fleet["vehicles"]:
        subject = v["vehicle_id"] or v["device_id"]
        for key in VEHICLE_METRICS:
            yield ("vehicle", month, subject, v["name"], key, v[key])
    for key, value in fleet["totals"].items():
        yield ("fleet", month, "site", site_name, key, value)
    for key, value in fleet["factors"].items():
        yield ("factor", month, "site", "", key, value)
    for day in fleet["daily"]:
        for key in ("km", "energy_kwh", "h2_kg"):
            yield ("fleet_daily", day["date"], "site", site_name, key, day[key])

    devices = report["devices"]
    for d in devices["devices"]:
        for key in DEVICE_METRICS:
            yield ("device", month, d["device_id"], d["name"], key, d[key])
    for kind, k in devices["by_kind"].items():
        for key, value in k.items():
            yield ("device_kind", month, kind, "", key, value)


def render_csv(report: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(HEADER)
    for section, period, subject, name, metric, value in lines(report):
        unit, zh, en = METRICS.get(metric, ("", "", ""))
        writer.writerow((section, period, subject, name, metric, value_text(value), unit, f"{zh} {en}".strip()))
    return ("\ufeff" + out.getvalue()).encode("utf-8")
