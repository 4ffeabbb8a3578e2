"""JSON, CSV and PDF of the seeded month: the CSV says what the JSON says; the PDF has pages with content,
Chinese text and every room's name."""

from __future__ import annotations

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

from reports.csvout import HEADER, value_text
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
        for key in ("km", "energy_kwh", "h2_kg", "kwh_per_km", "co2_avoided_kg", "powertrain"):
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
    assert sections["vehicle"] == 13 * len(month_report["fleet"]["vehicles"])


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
    for room in month_report["coldchain"]["rooms"]:
        assert "".join(room["name"].split()) in flat, room["name"]
    for gate in month_report["gates"]["by_gate"]:
        assert "".join(gate["name"].split()) in flat, gate["name"]
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    font_lines = fonts.splitlines()[2:]
    assert font_lines and all(" yes " in line for line in font_lines), fonts  # every font embedded
