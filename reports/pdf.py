"""The report as a PDF a manager can file: cover, key figures, one section per subject with tables and charts,
notes on definitions, page numbers (第 N 页 / 共 M 页). ReportLab lays it out; the CJK TrueType font found by
:mod:`reports.fonts` is embedded (subset), so the document reads the same on any computer."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

from reports import charts
from reports.fonts import find_cjk_font, reportlab_font
from reports.labels import ALERT_TYPES, DEVICE_KINDS, HOLD_REASONS, POWERTRAINS, SEVERITIES, both

PLATFORM_ZH = "智慧监管平台"
TITLE_ZH = "月度运行情况通报"
TITLE_EN = "Monthly operations report"
MAX_EXCURSION_ROWS = 60
MAX_HOLD_ROWS = 40
HEAD_BG = "#dce6f0"
RULE = "#8c9bab"

# Sources of the default CO2 factors, printed beside the values in use (docs/reports.md has the detail).
FACTOR_NOTES = {
    "diesel_l_per_100km": "被替代的柴油半挂牵引车同工况油耗 30–36 L/100 km；ICCT 2015 综述：欧盟约 31，美国约 39",
    "diesel_kg_co2_per_l": "IPCC 2006 缺省值：74.1 t CO₂/TJ × 43.0 TJ/kt × 0.84 kg/L",
    "grid_kg_co2_per_kwh": "生态环境部、国家统计局 2022 年电力二氧化碳排放因子："
    "内蒙古 0.6849，华北区域 0.6776，全国 0.5366",
    "charging_efficiency": "电网到电池的直流快充效率（电池计量的电量 ÷ 效率 = 电网电量）",
    "h2_kg_co2_per_kg": "制氢路线（IEA 2023）：煤制氢 22–26，天然气重整 10–12，可再生能源电解约 1",
}
# Where each factor is set: the report's setting and the zero-carbon dashboard's variable.
FACTOR_SETTINGS = {
    "diesel_l_per_100km": ("BONDWATCH_REPORT_DIESEL_L_PER_100KM", "diesel_l_per_100km"),
    "diesel_kg_co2_per_l": ("BONDWATCH_REPORT_DIESEL_KG_CO2_PER_L", "diesel_kg_co2_per_l"),
    "grid_kg_co2_per_kwh": ("BONDWATCH_REPORT_GRID_KG_CO2_PER_KWH", "grid_kg_co2_per_kwh"),
    "charging_efficiency": ("BONDWATCH_REPORT_CHARGING_EFFICIENCY", "charge_efficiency"),
    "h2_kg_co2_per_kg": ("BONDWATCH_REPORT_H2_KG_CO2_PER_KG", "h2_kg_co2_per_kg"),
}


# ---------------------------------------------------------------- formatting


def num(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def duration(seconds: float | None) -> str:
    """A duration for people: 45 s, 12 min, 3 h 05 min, 2 d 4 h."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def local_time(iso: str | None, with_seconds: bool = False) -> str:
    if not iso:
        return "—"
    moment = datetime.fromisoformat(iso)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%m-%d %H:%M")


def net_negative_note(fleet: dict[str, Any]) -> tuple[str, str] | None:
    """What the report says when net CO2 avoided is negative (for the fleet or one powertrain), Chinese and
    English: with the chosen grid or hydrogen factors the energy supply emits more than a diesel truck would,
    and where those factors are set. None when no net figure is negative."""
    t, f = fleet["totals"], fleet["factors"]
    negative = [kind for kind in ("bev", "fcev") if t[kind] and t[f"co2_avoided_{kind}_kg"] < 0]
    if not negative:
        return None
    who = {
        ("bev",): ("纯电动车", "the battery-electric trucks"),
        ("fcev",): ("氢燃料电池车", "the fuel-cell trucks"),
        ("bev", "fcev"): ("纯电动车和氢燃料电池车", "both the battery-electric and the fuel-cell trucks"),
    }[tuple(negative)]
    parts = "，".join(f"{POWERTRAINS[k][0]} {num(t[f'co2_avoided_{k}_kg'] / 1000, 2)} t" for k in negative)
    parts_en = ", ".join(f"{POWERTRAINS[k][1]} {num(t[f'co2_avoided_{k}_kg'] / 1000, 2)} t" for k in negative)
    net_t = num(t["co2_avoided_kg"] / 1000, 2)
    if t["co2_avoided_kg"] < 0:
        scope_zh, scope_en = f"全车队合计 {net_t} t（{parts}）", f"for the fleet as a whole, {net_t} t ({parts_en})"
    else:
        scope_zh = f"{parts}（全车队合计仍为 {net_t} t）"
        scope_en = f"for {who[1]}, {parts_en} (the fleet's total is still {net_t} t)"
    keys = (["grid_kg_co2_per_kwh", "charging_efficiency"] if "bev" in negative else []) + (
        ["h2_kg_co2_per_kg"] if "fcev" in negative else []
    )
    factors_zh = {
        "grid_kg_co2_per_kwh": f"电网排放因子 {f['grid_kg_co2_per_kwh']:g} kg CO₂/kWh",
        "charging_efficiency": f"充电效率 {f['charging_efficiency']:g}",
        "h2_kg_co2_per_kg": f"制氢排放因子 {f['h2_kg_co2_per_kg']:g} kg CO₂/kg H₂",
    }
    factors_en = {
        "grid_kg_co2_per_kwh": f"grid {f['grid_kg_co2_per_kwh']:g} kg CO₂/kWh",
        "charging_efficiency": f"charging efficiency {f['charging_efficiency']:g}",
        "h2_kg_co2_per_kg": f"hydrogen {f['h2_kg_co2_per_kg']:g} kg CO₂/kg H₂",
    }
    settings = ", ".join(FACTOR_SETTINGS[k][0] for k in keys)
    variables = ", ".join(FACTOR_SETTINGS[k][1] for k in keys)
    zh = (
        f"净减排为负值：{scope_zh}。按所选排放因子（{'，'.join(factors_zh[k] for k in keys)}），"
        f"{who[0]}所用能源在生产环节排放的二氧化碳，多于柴油车行驶同样里程的尾气排放。"
        f"这些因子可以配置：本报告为 {settings}，零碳看板为变量 {variables}；"
        "请按实际采购的电力与氢气（如绿电交易、可再生能源制氢）设置。直接减排不受这些因子影响。"
    )
    en = (
        f"Net CO₂ avoided is negative {scope_en}. With the chosen factors "
        f"({', '.join(factors_en[k] for k in keys)}), producing the energy {who[1]} used emitted more CO₂ than "
        "diesel trucks would have emitted from their exhausts over the same distance. The factors are "
        f"configurable: {settings} for this report, the variables {variables} on the zero-carbon dashboard; "
        "set those of the electricity and hydrogen actually bought (a green-power contract, renewable hydrogen). "
        "Tailpipe CO₂ avoided does not depend on them."
    )
    return zh, en


# ---------------------------------------------------------------- the document


class _Builder:
    def __init__(self, report: dict[str, Any], font_path: Path) -> None:
        from reportlab.lib import colors
        from reportlab.lib.enums import TA_CENTER
        from reportlab.lib.styles import ParagraphStyle

        self.report = report
        self.font_path = font_path
        self.font = reportlab_font(font_path)
        self.colors = colors
        base = ParagraphStyle("base", fontName=self.font, fontSize=9, leading=13, wordWrap="CJK")
        self.styles = {
            "body": base,
            "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10),
            "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5),
            # Headings stay with what follows them: never alone at the foot of a page.
            "h1": ParagraphStyle(
                "h1", parent=base, fontSize=14, leading=20, spaceBefore=8, spaceAfter=6, keepWithNext=1
            ),
            "h2": ParagraphStyle(
                "h2", parent=base, fontSize=11, leading=15, spaceBefore=8, spaceAfter=4, keepWithNext=1
            ),
            "title": ParagraphStyle("title", parent=base, fontSize=24, leading=34, alignment=TA_CENTER),
            "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=15, leading=22, alignment=TA_CENTER),
            "cover": ParagraphStyle("cover", parent=base, fontSize=10.5, leading=17, alignment=TA_CENTER),
        }
        self.story: list[Any] = []

    # -- building blocks

    def p(self, text: str, style: str = "body") -> None:
        from reportlab.lib.units import mm as MM
        from reportlab.platypus import CondPageBreak, Paragraph

        if style in ("h1", "h2"):
            # A section that would start in the last few centimetres of a page starts on the next one.
            self.story.append(CondPageBreak((70 if style == "h1" else 45) * MM))
        self.story.append(Paragraph(text, self.styles[style]))

    def gap(self, mm: float) -> None:
        from reportlab.lib.units import mm as MM
        from reportlab.platypus import Spacer

        self.story.append(Spacer(1, mm * MM))

    def table(
        self,
        header: list[str],
        rows: list[list[Any]],
        widths: list[float],
        align_right_from: int = 1,
        align_right_to: int = -1,
    ) -> None:
        """A table with a shaded header row repeated on every page; cells wrap (CJK-aware)."""
        from reportlab.lib.units import mm as MM
        from reportlab.platypus import Paragraph, Table, TableStyle

        cell = self.styles["cell"]
        # "冷库 Room" → two lines: CJK wrapping would otherwise break English words anywhere.
        data = [[Paragraph(h.replace(" ", "<br/>", 1), cell) for h in header]]
        for row in rows:
            data.append([Paragraph(str(v), cell) if isinstance(v, str) and len(v) > 14 else v for v in row])
        if not rows:
            data.append(["无数据 no data"] + [""] * (len(header) - 1))
        t = Table(data, colWidths=[w * MM for w in widths], repeatRows=1, hAlign="LEFT")
        c = self.colors
        style = [
            ("FONT", (0, 0), (-1, -1), self.font, 7.5),
            ("BACKGROUND", (0, 0), (-1, 0), c.HexColor(HEAD_BG)),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, c.HexColor(RULE)),
            ("LINEBELOW", (0, -1), (-1, -1), 0.6, c.HexColor(RULE)),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [c.white, c.HexColor("#f5f7fa")]),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (align_right_from, 1), (align_right_to, -1), "RIGHT"),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ]
        if not rows:
            style.append(("SPAN", (0, 1), (-1, 1)))
        t.setStyle(TableStyle(style))
        self.story.append(t)

    def image(self, png: bytes) -> None:
        from reportlab.lib.units import mm as MM
        from reportlab.lib.utils import ImageReader
        from reportlab.platypus import Image

        reader = ImageReader(io.BytesIO(png))
        w, h = reader.getSize()
        width = 174 * MM
        self.story.append(Image(io.BytesIO(png), width=width, height=width * h / w))

    # -- pages

    def cover(self) -> None:
        from reportlab.platypus import PageBreak

        r = self.report
        site, period = r["site"], r["period"]
        year, month = (int(x) for x in r["month"].split("-"))
        month_en = datetime(year, month, 1).strftime("%B %Y")
        self.gap(45)
        self.p(f"{site['name_zh']} {PLATFORM_ZH}", "subtitle")
        self.gap(4)
        self.p(TITLE_ZH, "title")
        self.p(TITLE_EN, "subtitle")
        self.gap(14)
        self.p(f"{year} 年 {month} 月 &nbsp; {month_en}", "subtitle")
        self.gap(16)
        lines = [
            f"{site['name_en']} · 海关关区 customs district {site['customs_district']} · {site['id']}",
            f"统计周期 Period: {local_time(period['from'], True)} – {local_time(period['to'], True)}"
            f"（{r['timezone']}，UTC+08:00）",
        ]
        if not period["complete"]:
            lines.append(f"本月尚未结束，数据截至 {local_time(period['until'], True)} / partial month, data until then")
        lines.append(f"生成时间 Generated: {local_time(r['generated_at'], True)}")
        for line in lines:
            self.p(line, "cover")
        self.gap(40)
        self.p(
            "每月25日通报运行情况 · 数据来自平台数据库，定义见文末说明 / figures from the platform's database; "
            "definitions in the notes at the end",
            "cover",
        )
        self.story.append(PageBreak())

    def summary(self) -> None:
        s = self.report["summary"]
        up, comp = s["uptime_pct"], s["completeness_pct"]
        self.p("一、运行概况 Summary", "h1")
        rows = [
            ["冷库温度合格率 Cold rooms: time in range", pct(s["in_range_pct"]), f"{s['rooms']} 间 rooms"],
            ["超温事件 Temperature excursions", num(s["excursions"]), duration(s["excursion_s"])],
            ["告警 Alerts (紧急 critical)", num(s["alerts"]), f"{num(s['critical_alerts'])} 紧急 critical"],
            ["告警确认用时中位数 Median time to acknowledge", duration(s["ack_median_s"]), ""],
            ["卡口通行 入区/出区 Gate passages in/out", f"{num(s['passages_in'])} / {num(s['passages_out'])}", ""],
            ["出区拦截 Outbound holds", num(s["holds"]), ""],
            ["车队里程 Fleet distance", f"{num(s['km'], 1)} km", f"{num(s['vehicles'])} 辆出车 vehicles active"],
            ["耗电量 Electricity", f"{num(s['energy_kwh'], 1)} kWh", ""],
            ["耗氢量 Hydrogen", f"{num(s['h2_kg'], 1)} kg", ""],
            ["二氧化碳直接减排 Tailpipe CO₂ avoided", f"{num(s['co2_avoided_tailpipe_kg'] / 1000, 2)} t",
             "尾气零排放 nothing from the exhaust"],
            ["二氧化碳净减排 Net CO₂ avoided (well to wheel)", f"{num(s['co2_avoided_kg'] / 1000, 2)} t",
             "扣除电力与制氢排放 less grid and H₂ supply CO₂"],
            ["设备在线率 车载/冷库 Uptime GNSS/cold rooms", f"{pct(up.get('gps'))} / {pct(up.get('temp'))}", ""],
            ["数据完整率 车载/冷库 Completeness GNSS/cold rooms",
             f"{pct(comp.get('gps'))} / {pct(comp.get('temp'))}", ""],
        ]  # fmt: skip
        self.table(["指标 Measure", "数值 Value", "备注 Note"], rows, [95, 40, 39], align_right_to=1)
        if s["co2_avoided_kg"] < 0:
            self.gap(1.5)
            self.p(
                "净减排为负值：按所选电网与制氢排放因子，能源生产的排放多于柴油车尾气排放；因子可配置，见第五节。"
                " Net CO₂ avoided is negative: with the chosen grid and hydrogen factors, producing the energy "
                "emitted more than diesel trucks would have; the factors are configurable (section 5).",
                "small",
            )

    def coldchain(self) -> None:
        cold = self.report["coldchain"]
        self.p("二、冷链温度合规 Cold-chain temperature compliance", "h1")
        self.p(
            "合格率为温度处于温控范围内的时长占数据覆盖时长的比例（时间加权）；"
            "平均动力学温度（MKT）按 ΔH = 83.144 kJ/mol 计算。"
            " Time in range is the share of the time covered by readings that was within the profile's limits "
            "(time-weighted); MKT with ΔH = 83.144 kJ/mol.",
            "small",
        )
        self.gap(2)
        rows = []
        for room in cold["rooms"]:
            limits = f"{num(room['min_c'], 1)} ~ {num(room['max_c'], 1)}" if room["profile"] else "—"
            rows.append(
                [
                    room["name"],
                    limits,
                    pct(room["in_range_pct"]),
                    num(room["excursions"]),
                    duration((room["above_s"] or 0) + (room["below_s"] or 0)) if room["profile"] else "—",
                    num(room["mkt_c"], 2),
                    num(room["mean_c"], 2),
                    f"{num(room['lowest_c'], 1)} / {num(room['highest_c'], 1)}",
                    duration(room["covered_s"]),
                ]
            )
        self.table(
            ["冷库 Room", "范围 Range °C", "合格率 In range", "超温 Excur.", "超限时长 Out of range",
             "MKT °C", "平均 Mean °C", "最低/最高 Min/Max", "覆盖 Covered"],
            rows, [40, 19, 17, 12, 19, 13, 15, 21, 18],
        )  # fmt: skip
        self.gap(3)
        for png in charts.coldchain_heatmaps(self.report, self.font_path):
            self.image(png)
        self.image(charts.site_compliance(self.report, self.font_path))
        self.p("超温事件 Temperature excursions", "h2")
        rows = []
        for e in cold["excursions"][:MAX_EXCURSION_ROWS]:
            direction = (
                "超上限 high" if e["direction"] == "high" else "低于下限 low" if e["direction"] == "low" else "—"
            )
            rows.append(
                [
                    e["name"],
                    local_time(e["started_at"]),
                    duration(e["duration_s"]),
                    num(e["peak_c"], 1),
                    f"{direction} {num(e['limit_c'], 1)}",
                    local_time(e["ended_at"]) if e["ended_at"] else "未结束 ongoing",
                ]
            )
        self.table(
            ["冷库 Room", "开始 Start", "持续 Duration", "峰值 Peak °C", "方向/限值 Direction/limit", "结束 End"],
            rows, [48, 24, 24, 20, 32, 26],
        )  # fmt: skip
        if len(cold["excursions"]) > MAX_EXCURSION_ROWS:
            self.p(
                f"另有 {len(cold['excursions']) - MAX_EXCURSION_ROWS} 条，见 CSV / JSON 版本。"
                f" {len(cold['excursions']) - MAX_EXCURSION_ROWS} more in the CSV and JSON versions.",
                "small",
            )

    def alerts(self) -> None:
        alerts = self.report["alerts"]
        self.p("三、告警处置 Alerts", "h1")
        self.p(
            "确认用时 = 确认时间 − 平台告警时间；解除用时 = 解除时间 − 告警开始时间（规则自动解除或人工处置）。"
            " Time to acknowledge = acknowledged − raised by the platform; time to clear = cleared − opened "
            "(by its rule or resolved by a person). Median / 90th percentile.",
            "small",
        )
        self.gap(2)
        rows = []
        for a in alerts["by_type"]:
            rows.append(
                [
                    both(ALERT_TYPES, a["type"]),
                    both(SEVERITIES, a["severity"]),
                    num(a["opened"]),
                    num(a["acknowledged"]),
                    num(a["cleared"]),
                    f"{duration(a['ack_median_s'])} / {duration(a['ack_p90_s'])}",
                    f"{duration(a['clear_median_s'])} / {duration(a['clear_p90_s'])}",
                ]
            )
        total = alerts["total"]
        if alerts["by_type"]:
            rows.append(
                [
                    "合计 Total",
                    "",
                    num(total["opened"]),
                    num(total["acknowledged"]),
                    num(total["cleared"]),
                    f"{duration(total.get('ack_median_s'))} / {duration(total.get('ack_p90_s'))}",
                    f"{duration(total.get('clear_median_s'))} / {duration(total.get('clear_p90_s'))}",
                ]
            )
        self.table(
            ["类型 Type", "级别 Severity", "告警 Opened", "确认 Acked", "解除 Cleared",
             "确认用时 中位/P90 To ack", "解除用时 中位/P90 To clear"],
            rows, [40, 22, 15, 15, 15, 33, 34], align_right_from=2,
        )  # fmt: skip
        self.gap(3)
        self.image(charts.alerts_per_day(self.report, self.font_path))

    def gates(self) -> None:
        gates = self.report["gates"]
        self.p("四、卡口通行 Gate passages", "h1")
        rows = [
            [g["name"], num(g["inbound"]), num(g["outbound"]), num(g["passed"]), num(g["held"])]
            for g in gates["by_gate"]
        ]
        if rows:
            t = gates["totals"]
            rows.append(["合计 Total", num(t["inbound"]), num(t["outbound"]), num(t["passed"]), num(t["held"])])
        self.table(
            ["卡口 Gate", "入区 Inbound", "出区 Outbound", "放行 Passed", "拦截 Held"], rows, [62, 28, 28, 28, 28]
        )
        self.gap(3)
        self.image(charts.passages_per_day(self.report, self.font_path))
        self.p("拦截原因 Hold reasons", "h2")
        names = {g["gate_id"]: g["name"] for g in gates["by_gate"]}
        rows = [
            [names.get(r["gate_id"], r["gate_id"]), both(HOLD_REASONS, r["code"]), num(r["passages"])]
            for r in gates["hold_reasons"]
        ]
        self.table(["卡口 Gate", "原因 Reason", "通行次数 Passages"], rows, [62, 80, 32], align_right_from=2)
        if gates["holds"]:
            self.p("拦截明细 Held passages", "h2")
            rows = [
                [
                    local_time(h["at"]),
                    names.get(h["gate_id"], h["gate_id"]),
                    h["vehicle_id"] or "—",
                    "；".join(both(HOLD_REASONS, c) for c in h["reasons"]),
                ]
                for h in gates["holds"][:MAX_HOLD_ROWS]
            ]
            self.table(["时间 Time", "卡口 Gate", "车辆 Vehicle", "原因 Reasons"], rows, [24, 40, 26, 84], 9)
            if len(gates["holds"]) > MAX_HOLD_ROWS:
                extra = len(gates["holds"]) - MAX_HOLD_ROWS
                self.p(f"另有 {extra} 条，见 CSV / JSON 版本。 {extra} more in the CSV and JSON versions.", "small")

    def fleet(self) -> None:
        fleet = self.report["fleet"]
        t = fleet["totals"]
        self.p("五、车队运行与减排 Fleet and CO₂", "h1")
        tail_t, net_t = t["co2_avoided_tailpipe_kg"] / 1000, t["co2_avoided_kg"] / 1000
        self.p(
            f"纯电动 {t['bev']} 辆、氢燃料电池 {t['fcev']} 辆；行驶 {num(t['km'], 1)} km，"
            f"耗电 {num(t['energy_kwh'], 1)} kWh（{num(t['kwh_per_km'], 3)} kWh/km），"
            f"耗氢 {num(t['h2_kg'], 2)} kg（{num(t['h2_kg_per_100km'], 2)} kg/100 km）。"
            f"较同里程柴油车：直接减排（尾气）CO₂ {num(tail_t, 2)} t，"
            f"净减排（扣除电力与制氢排放）CO₂ {num(net_t, 2)} t。"
            f" {t['bev']} battery-electric and {t['fcev']} fuel-cell trucks drove {num(t['km'], 1)} km. "
            f"Against diesel trucks driving the same distance: tailpipe (direct) CO₂ avoided {num(tail_t, 2)} t; "
            f"net (well-to-wheel, less the CO₂ of producing the electricity and hydrogen) {num(net_t, 2)} t.",
        )
        self.gap(2)
        kinds = [k for k in ("bev", "fcev") if t[k]]
        tailpipe = [t[f"co2_avoided_tailpipe_{k}_kg"] for k in kinds] + [t["co2_avoided_tailpipe_kg"]]
        net = [t[f"co2_avoided_{k}_kg"] for k in kinds] + [t["co2_avoided_kg"]]
        supply = [a - b for a, b in zip(tailpipe, net, strict=True)]  # the total's is co2_actual_kg

        def tonnes(kgs: list[float]) -> list[str]:
            return [num(kg / 1000, 2) for kg in kgs]

        self.table(
            ["口径 Scope", *(f"{POWERTRAINS[k][0]} {POWERTRAINS[k][1]} t" for k in kinds), "合计 Total t"],
            [
                ["直接减排（尾气，范围一） Tailpipe CO₂ avoided (direct, scope 1)", *tonnes(tailpipe)],
                ["能源生产排放（电网、制氢） Energy supply CO₂ (grid, hydrogen)", *tonnes(supply)],
                ["净减排（油井到车轮） Net CO₂ avoided (well to wheel)", *tonnes(net)],
            ],
            [84, *([30] * len(kinds)), 90 - 30 * len(kinds)],
        )
        note = net_negative_note(fleet)
        if note is not None:
            self.gap(2)
            self.p(f"{note[0]} {note[1]}")
        self.gap(2)
        rows = []
        for v in fleet["vehicles"]:
            rows.append(
                [
                    v["vehicle_id"] or v["device_id"],
                    v["plate"] or "—",
                    POWERTRAINS.get(v["powertrain"], (v["powertrain"], ""))[0],
                    num(v["km"], 1),
                    num(v["energy_kwh"], 1),
                    num(v["h2_kg"], 2),
                    num(v["kwh_per_km"], 3) if v["energy_kwh"] is not None else num(v["h2_kg_per_100km"], 2),
                    num(v["co2_avoided_tailpipe_kg"], 0),
                    num(v["co2_avoided_kg"], 0),
                ]
            )
        self.table(
            ["车辆 Vehicle", "车牌 Plate", "动力 Power", "里程 km", "电 kWh", "氢 kg H₂",
             "kWh/km 或 kg/100km", "直接减排 Tailpipe CO₂ kg", "净减排 Net CO₂ kg"],
            rows, [20, 24, 18, 18, 18, 16, 22, 20, 18], align_right_from=3,
        )  # fmt: skip
        self.gap(3)
        self.image(charts.fleet_energy(self.report, self.font_path))
        self.p("减排计算因子 CO₂ factors", "h2")
        self.p(
            "基准：同里程柴油车尾气排放。直接减排 = 基准（纯电动与氢燃料电池车尾气零排放）；"
            "净减排 = 基准 − 能源生产排放，即纯电动车用电（按充电效率折算为电网电量）与氢燃料电池车用氢的生产排放，"
            "取决于下列电网与制氢因子。"
            " Baseline: a diesel truck's exhaust over the same distance. Tailpipe CO₂ avoided = the baseline "
            "(battery-electric and fuel-cell trucks emit nothing from an exhaust); net CO₂ avoided = the baseline "
            "− the energy supply's CO₂: the grid electricity (pack energy over the charging efficiency) and the "
            "hydrogen the trucks used, at their production emissions, so it depends on the grid and hydrogen "
            "factors below.",
            "small",
        )
        self.gap(1)
        units = {
            "diesel_l_per_100km": "L/100 km",
            "diesel_kg_co2_per_l": "kg CO₂/L",
            "grid_kg_co2_per_kwh": "kg CO₂/kWh",
            "charging_efficiency": "",
            "h2_kg_co2_per_kg": "kg CO₂/kg H₂",
        }
        names = {
            "diesel_l_per_100km": "柴油车油耗 Diesel truck",
            "diesel_kg_co2_per_l": "柴油排放因子 Diesel",
            "grid_kg_co2_per_kwh": "电网排放因子 Grid",
            "charging_efficiency": "充电效率 Charging",
            "h2_kg_co2_per_kg": "氢气排放因子 Hydrogen",
        }
        rows = [[names[k], f"{v:g} {units[k]}", FACTOR_NOTES[k]] for k, v in fleet["factors"].items()]
        self.table(["因子 Factor", "取值 Value", "依据 Source"], rows, [36, 30, 108], align_right_from=9)
        self.gap(1)
        self.p(
            "因子可配置 The factors are configurable: "
            + "；".join(f"{names[k].split()[0]} {FACTOR_SETTINGS[k][0]}" for k in fleet["factors"])
            + "（零碳看板的变量 the zero-carbon dashboard's variables: "
            + ", ".join(FACTOR_SETTINGS[k][1] for k in fleet["factors"])
            + "）。",
            "small",
        )

    def devices(self) -> None:
        devices = self.report["devices"]
        self.p("六、设备在线率与数据完整性 Device uptime and data completeness", "h1")
        self.p(
            "在线率：每条数据覆盖至下一条数据，最长为该设备的离线判定时长（不少于其上报间隔中位数的两倍），"
            "覆盖时长占统计周期的比例。完整率：实收条数占应收条数（统计周期 ÷ 应报间隔）的比例。"
            " Uptime: each reading covers the time until the next, "
            "at most the device's silence limit (at least twice its median interval), as a share of the period. "
            "Completeness: readings received over readings expected (period ÷ expected interval).",
            "small",
        )
        self.gap(2)
        rows = [
            [
                both(DEVICE_KINDS, kind),
                num(k["devices"]),
                pct(k["uptime_pct"]),
                num(k["received"]),
                num(k["expected"], 0),
                pct(k["completeness_pct"]),
            ]
            for kind, k in devices["by_kind"].items()
        ]
        self.table(
            ["类型 Kind", "设备 Devices", "在线率 Uptime", "实收 Received", "应收 Expected", "完整率 Complete"],
            rows, [50, 22, 24, 26, 26, 26],
        )  # fmt: skip
        self.gap(3)
        ordered = sorted(devices["devices"], key=lambda d: (d["uptime_pct"], d["device_id"]))
        rows = [
            [
                d["name"] if d["name"] != d["device_id"] else d["device_id"],
                DEVICE_KINDS.get(d["kind"], (d["kind"], ""))[0],
                num(d["readings"]),
                duration(d["median_interval_s"]),
                pct(d["uptime_pct"]),
                pct(d["completeness_pct"]),
            ]
            for d in ordered
        ]
        self.p("各设备（在线率由低到高） Devices, lowest uptime first", "h2")
        self.table(
            ["设备 Device", "类型 Kind", "数据条数 Readings", "间隔 Interval", "在线率 Uptime", "完整率 Complete"],
            rows, [62, 26, 22, 20, 22, 22], align_right_from=2,
        )  # fmt: skip

    def notes(self) -> None:
        self.p("七、说明 Notes", "h1")
        notes = [
            "统计周期按北京时间（Asia/Shanghai）自然月划分；时间均为北京时间。"
            " Months and days are cut at local midnight in Asia/Shanghai; times are local.",
            "冷链统计由数据库函数 bondwatch_coldchain 计算，与平台接口和看板口径一致；每条读数代表至下一条读数的时长，"
            "最长为温控方案的离线判定时长。 Cold-chain figures come from the database function bondwatch_coldchain, "
            "the same as the API and dashboards.",
            "超温事件取自温度超限告警（含延时与回差），与按读数统计的超限时长口径不同。"
            " Excursions are the temp_excursion alerts (after their delay and hysteresis); "
            "out-of-range time counts every reading outside the limits.",
            "里程、电量与氢量为车载终端累计值的逐条增量之和：数值回落视为重置，不计；超出物理可能的跳变不计；"
            "数据中断期间的增量照常计入。 Distance, energy and hydrogen sum the rises of the terminals' cumulative "
            "counters: a fall is a reset, an impossible jump a glitch, neither counts; a gap counts what the "
            "counter rose across it.",
            "二氧化碳减排有两个口径：直接减排为同里程柴油车的尾气排放（车队车辆尾气零排放，范围一）；"
            "净减排再扣除所用电力与氢气的生产排放（油井到车轮），随电网与制氢排放因子变化，可能为负。"
            " CO₂ avoided is given twice: tailpipe (direct, scope 1), a diesel truck's exhaust over the same "
            "distance; and net (well to wheel), less the CO₂ of producing the electricity and hydrogen used, which "
            "follows the grid and hydrogen factors and can be negative.",
            "完整定义见 docs/reports.md。 Full definitions: docs/reports.md.",
        ]
        for n in notes:
            self.p(f"• {n}", "small")
            self.gap(1.5)

    def build(self) -> bytes:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm as MM
        from reportlab.platypus import SimpleDocTemplate

        r = self.report
        self.cover()
        self.summary()
        self.coldchain()
        self.alerts()
        self.gates()
        self.fleet()
        self.devices()
        self.notes()
        buf = io.BytesIO()
        doc = SimpleDocTemplate(
            buf,
            pagesize=A4,
            leftMargin=18 * MM,
            rightMargin=18 * MM,
            topMargin=20 * MM,
            bottomMargin=18 * MM,
            title=f"{r['site']['name_zh']} {PLATFORM_ZH} {TITLE_ZH} {r['month']}",
            author="BondWatch",
            subject=f"{TITLE_EN} {r['month']} ({r['site']['id']})",
            creator="BondWatch reports",
        )
        header = f"{r['site']['name_zh']} {TITLE_ZH} {r['month']} · {TITLE_EN}"
        doc.build(self.story, canvasmaker=_numbered_canvas(self.font, header))
        return buf.getvalue()


def _numbered_canvas(font: str, header: str) -> Any:
    """A canvas that knows the page count when it writes each footer (第 N 页 / 共 M 页): pages are kept
    until the document is complete, then each is written with its number."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm as MM
    from reportlab.pdfgen.canvas import Canvas

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # ReportLab has no type hints
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # The embedded font from the start: otherwise the file names Helvetica, which it never uses.
            kwargs["initialFontName"] = font
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            width, height = A4
            number = self.getPageNumber()
            self.saveState()
            self.setFont(font, 8)
            self.setFillColor(colors.HexColor("#555555"))
            if number > 1:  # the cover has no running header
                self.drawString(18 * MM, height - 12 * MM, header)
                self.setStrokeColor(colors.HexColor(RULE))
                self.setLineWidth(0.4)
                self.line(18 * MM, height - 13.5 * MM, width - 18 * MM, height - 13.5 * MM)
            self.drawCentredString(width / 2, 10 * MM, f"第 {number} 页 / 共 {total} 页 · Page {number} of {total}")
            self.restoreState()

    return NumberedCanvas


def render_pdf(report: dict[str, Any], font: str = "") -> bytes:
    """The PDF of a gathered report; ``font`` is BONDWATCH_REPORT_FONT (empty: search the system)."""
    return _Builder(report, find_cjk_font(font)).build()
