"""JSON, CSV and PDF of the seeded month: the CSV says what the JSON says; the PDF has pages with content,
Chinese text and every room's name."""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reports import charts
from reports.csvout import HEADER, METRICS, value_text
from reports.fonts import find_cjk_font
from reports.pdf import net_negative_note
from reports.render import render

needs_poppler = pytest.mark.skipif(
    not (shutil.which("pdftoppm") and shutil.which("pdftotext")), reason="poppler-utils not installed (make install)"
)


def test_json_is_the_gathered_report(month_report: dict[str, Any]) -> None:
    data = render(month_report, "json")
    assert json.loads(data) == json.loads(json.dumps(month_report))
    assert "鄂尔多斯综合保税区".encode() in data  # UTF-8 as is, not \\u escapes


def _csv_rows(month_report: dict[str, Any]) -> list[dict[str, str]]:
    data = render(month_report, "csv")
    assert data.startswith("\ufeff".encode())  # for Excel on a Chinese Windows
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == HEADER
    return list(reader)


def _same(csv_value: str, json_value: Any) -> bool:
    if json_value is None:
        return csv_value == ""
    if isinstance(json_value, bool) or not isinstance(json_value, int | float):
        return csv_value == value_text(json_value)
    return float(csv_value) == pytest.approx(float(json_value), abs=1e-9)


def test_csv_parses_and_matches_the_json(month_report: dict[str, Any]) -> None:
    rows = _csv_rows(month_report)
    by: dict[tuple[str, str, str, str], str] = {}
    for row in rows:
        where = (row["section"], row["period"], row["subject"], row["metric"])
        assert where not in by, f"figure twice in the CSV: {where}"
        by[where] = row["value"]
        assert row["label"], f"no label for {row['metric']}"
    month = month_report["month"]

    for room in month_report["coldchain"]["rooms"]:
        for key in ("readings", "covered_s", "in_range_pct", "mkt_c", "mean_c", "excursions", "min_c", "max_c"):
            assert _same(by[("room", month, room["device_id"], key)], room[key]), (room["device_id"], key)
    for day in month_report["coldchain"]["daily"]:
        assert _same(by[("room_daily", day["date"], "site", "in_range_pct")], day["in_range_pct"])
        for dev, value in day["rooms"].items():
            assert _same(by[("room_daily", day["date"], dev, "in_range_pct")], value)
    for e in month_report["coldchain"]["excursions"]:
        for key in ("device_id", "peak_c", "duration_s", "started_at", "ended_at"):
            assert _same(by[("excursion", month, str(e["alert_id"]), key)], e[key])
    for a in month_report["alerts"]["by_type"]:
        for key in ("opened", "acknowledged", "cleared", "ack_median_s", "ack_p90_s", "clear_median_s"):
            assert _same(by[("alert", month, f"{a['type']}/{a['severity']}", key)], a[key])
    for day in month_report["alerts"]["daily"]:
        for severity in ("critical", "major", "minor", "warning"):
            assert _same(by[("alert_daily", day["date"], severity, "opened")], day[severity])
    for g in month_report["gates"]["by_gate"]:
        for key in ("inbound", "outbound", "passed", "held"):
            assert _same(by[("gate", month, g["gate_id"], key)], g[key])
    for r in month_report["gates"]["hold_reasons"]:
        assert _same(by[("hold_reason", month, r["gate_id"], r["code"])], r["passages"])
    for v in month_report["fleet"]["vehicles"]:
        subject = v["vehicle_id"] or v["device_id"]
        for key in (
            "km",
            "energy_kwh",
            "h2_kg",
            "kwh_per_km",
            "co2_avoided_kg",
            "co2_avoided_tailpipe_kg",
            "powertrain",
        ):
            assert _same(by[("vehicle", month, subject, key)], v[key]), (subject, key)
    for key, value in month_report["fleet"]["totals"].items():
        assert _same(by[("fleet", month, "site", key)], value)
    for key, value in month_report["fleet"]["factors"].items():
        assert _same(by[("factor", month, "site", key)], value)
    for d in month_report["devices"]["devices"]:
        for key in ("readings", "uptime_pct", "completeness_pct", "expected"):
            assert _same(by[("device", month, d["device_id"], key)], d[key])
    sections: dict[str, int] = defaultdict(int)
    for row in rows:
        sections[row["section"]] += 1
    assert sections["room"] == 16 * len(month_report["coldchain"]["rooms"])
    assert sections["vehicle"] == 14 * len(month_report["fleet"]["vehicles"])
    for key in ("co2_avoided_kg", "co2_avoided_tailpipe_kg"):
        assert _same(by[("summary", month, "site", key)], month_report["summary"][key])


def test_csv_labels_tell_tailpipe_from_net(month_report: dict[str, Any]) -> None:
    """Both CO2 figures are in the CSV with Chinese and English labels that say which is which."""
    labels = {(row["section"], row["metric"]): row["label"] for row in _csv_rows(month_report)}
    for section in ("summary", "fleet", "vehicle"):
        assert labels[(section, "co2_avoided_tailpipe_kg")] == "二氧化碳直接减排量 tailpipe CO2 avoided (direct)"
        assert labels[(section, "co2_avoided_kg")] == "二氧化碳净减排量 net CO2 avoided (well to wheel)"
    for kind, zh in (("bev", "纯电动车"), ("fcev", "氢燃料电池车")):
        assert labels[("fleet", f"co2_avoided_tailpipe_{kind}_kg")].startswith(f"{zh}直接减排量 tailpipe")
        assert labels[("fleet", f"co2_avoided_{kind}_kg")].startswith(f"{zh}净减排量 net")
    # Every metric of the fleet's totals has a label and a unit of its own.
    for key in month_report["fleet"]["totals"]:
        assert key in METRICS, key


def _fleet(bev_net: float, fcev_net: float) -> dict[str, Any]:
    """A fleet section with two battery and one fuel-cell truck: only what the note reads."""
    return {
        "totals": {
            "bev": 2,
            "fcev": 1,
            "co2_avoided_kg": bev_net + fcev_net,
            "co2_avoided_bev_kg": bev_net,
            "co2_avoided_fcev_kg": fcev_net,
        },
        "factors": {
            "diesel_l_per_100km": 35.0,
            "diesel_kg_co2_per_l": 2.68,
            "grid_kg_co2_per_kwh": 0.6849,
            "charging_efficiency": 0.92,
            "h2_kg_co2_per_kg": 22.0,
        },
    }


def test_negative_net_is_explained_with_the_factors_and_their_settings() -> None:
    assert net_negative_note(_fleet(1200.0, 300.0)) is None
    assert net_negative_note(_fleet(0.0, 0.0)) is None

    note = net_negative_note(_fleet(400.0, -900.0))  # fuel-cell trucks below zero, the fleet's total too
    assert note is not None
    zh, en = note
    assert zh.startswith("净减排为负值：全车队合计 -0.50 t（氢燃料电池 -0.90 t）")
    assert "制氢排放因子 22 kg CO₂/kg H₂" in zh and "多于柴油车" in zh
    assert "BONDWATCH_REPORT_H2_KG_CO2_PER_KG" in zh and "h2_kg_co2_per_kg" in zh
    assert "GRID" not in zh  # the battery trucks' net figure is positive: the grid factor is not the cause
    assert en.startswith("Net CO₂ avoided is negative for the fleet as a whole, -0.50 t (hydrogen fuel cell -0.90 t)")
    assert "hydrogen 22 kg CO₂/kg H₂" in en and "emitted more CO₂ than diesel trucks" in en
    assert "configurable: BONDWATCH_REPORT_H2_KG_CO2_PER_KG for this report" in en

    note = net_negative_note(_fleet(900.0, -300.0))  # only the fuel-cell trucks; the fleet still saves
    assert note is not None
    assert "全车队合计仍为 0.60 t" in note[0] and "the fleet's total is still 0.60 t" in note[1]

    note = net_negative_note(_fleet(-100.0, -300.0))  # both: both factors, with their settings and variables
    assert note is not None
    zh, en = note
    for name in (
        "电网排放因子 0.6849 kg CO₂/kWh",
        "BONDWATCH_REPORT_GRID_KG_CO2_PER_KWH",
        "BONDWATCH_REPORT_CHARGING_EFFICIENCY",
        "BONDWATCH_REPORT_H2_KG_CO2_PER_KG",
        "grid_kg_co2_per_kwh",
        "charge_efficiency",
        "纯电动车和氢燃料电池车",
    ):
        assert name in zh, name
    assert "both the battery-electric and the fuel-cell trucks" in en and "grid 0.6849 kg CO₂/kWh" in en


@needs_poppler
def test_pdf_pages_text_and_pictures(month_report: dict[str, Any], tmp_path: Path) -> None:
    pdf = render(month_report, "pdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    print(f"PDF of a seeded month: {pages} pages, {len(pdf)} bytes")
    assert pages >= 6

    subprocess.run(["pdftoppm", "-r", "40", "-png", str(path), str(tmp_path / "page")], check=True)
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == pages
    for image in images:
        with Image.open(image) as im:
            grey = im.convert("L")
            dark = sum(grey.histogram()[:200])  # pixels clearly not white
            assert dark / (grey.width * grey.height) > 0.003, f"{image.name} looks blank"
    # Pages with charts have colour; the cold-chain page has the heat map.
    with Image.open(images[2]) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 50

    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    # Compared without white space: a long name may wrap inside its table cell.
    flat = "".join(text.split())
    for expected in (
        "鄂尔多斯综合保税区",
        "智慧监管平台",
        "月度运行情况通报",
        "Monthly operations report",
        "2025 年 3 月",
    ):
        assert "".join(expected.split()) in flat, expected
    assert f"第1页/共{pages}页" in flat and f"第{pages}页/共{pages}页" in flat
    # Both CO2 figures, Chinese first with English beside, and the settings that set the factors.
    for expected in (
        "二氧化碳直接减排 Tailpipe CO₂ avoided",
        "二氧化碳净减排 Net CO₂ avoided (well to wheel)",
        "直接减排（尾气，范围一） Tailpipe CO₂ avoided (direct, scope 1)",
        "净减排（油井到车轮） Net CO₂ avoided (well to wheel)",
        "BONDWATCH_REPORT_GRID_KG_CO2_PER_KWH",
        "BONDWATCH_REPORT_H2_KG_CO2_PER_KG",
    ):
        assert "".join(expected.split()) in flat, expected
    totals = month_report["fleet"]["totals"]
    assert f"直接减排（尾气）CO₂{totals['co2_avoided_tailpipe_kg'] / 1000:,.2f}t" in flat
    assert f"净减排（扣除电力与制氢排放）CO₂{totals['co2_avoided_kg'] / 1000:,.2f}t" in flat
    # At the default factors (coal-based hydrogen, 22 kg/kg) the seeded fuel-cell truck's net figure is below
    # zero, and the PDF says why, in both languages, with the setting that changes it.
    assert totals["co2_avoided_fcev_kg"] < 0
    note = net_negative_note(month_report["fleet"])
    assert note is not None
    for part in note:
        assert "".join(part.split()) in flat
    for room in month_report["coldchain"]["rooms"]:
        assert "".join(room["name"].split()) in flat, room["name"]
    for gate in month_report["gates"]["by_gate"]:
        assert "".join(gate["name"].split()) in flat, gate["name"]
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    font_lines = fonts.splitlines()[2:]
    assert font_lines and all(" yes " in line for line in font_lines), fonts  # every font embedded


def test_pdf_of_a_large_store_splits_its_heat_map(month_report: dict[str, Any], tmp_path: Path) -> None:
    """96 rooms (the seeded month's copied 8 times): every room is in the PDF, the heat map one chart per 40 (a
    300-room store overflowed the page before)."""
    big = copy.deepcopy(month_report)
    cold = big["coldchain"]
    rooms = cold["rooms"]
    cold["rooms"] = [
        {**room, "device_id": f"{room['device_id']}-{k:02d}", "name": f"{room['name']} #{k:02d}"}
        for k in range(8)
        for room in rooms
    ]
    for day in cold["daily"]:
        day["rooms"] = {f"{d}-{k:02d}": v for k in range(8) for d, v in day["rooms"].items()}
    assert len(cold["rooms"]) > 2 * charts.HEATMAP_ROOMS
    assert len(charts.coldchain_heatmaps(big, find_cjk_font())) == -(-len(cold["rooms"]) // charts.HEATMAP_ROOMS)
    path = tmp_path / "big.pdf"
    path.write_bytes(render(big, "pdf"))
    flat = "".join(
        subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout.split()
    )
    for room in cold["rooms"]:
        assert "".join(room["name"].split()) in flat, room["name"]
