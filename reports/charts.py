"""The report's charts, drawn with matplotlib off-screen (Agg, no pyplot: no global figure state, so the
scheduled job's thread and a request can draw at once) and returned as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from reports.fonts import matplotlib_family
from reports.labels import SEVERITIES, SEVERITY_ORDER

WIDTH_IN = 6.9  # the PDF's text width (A4 less 2 x 18 mm margins)
DPI = 170
SEVERITY_COLOURS = {"critical": "#b2182b", "major": "#ef8a62", "minor": "#67a9cf", "warning": "#f7d358"}
IN_COLOUR, OUT_COLOUR = "#4393c3", "#d6604d"
KWH_COLOUR, H2_COLOUR = "#1b7837", "#762a83"


@contextmanager
def _style(font: Path) -> Iterator[None]:
    import matplotlib

    family = matplotlib_family(font)
    rc: dict[str, Any] = {
        "font.family": [family, "DejaVu Sans"],  # DejaVu for what the CJK font lacks (e.g. some symbols)
        "font.size": 8,
        "axes.titlesize": 9,
        "axes.unicode_minus": False,  # a hyphen-minus: not every CJK font has U+2212
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]  # the stubs list the keys as Literals
        yield


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _days(rows: list[dict[str, Any]]) -> list[date]:
    return [date.fromisoformat(r["date"]) for r in rows]


def _day_axis(ax: Any, days: list[date]) -> None:
    ax.set_xticks(range(len(days)))
    ax.set_xticklabels([str(d.day) if d.day == 1 or d.day % 5 == 0 else "" for d in days])
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.set_xlabel("日 day")


# Rooms per heatmap: 40 rows keep a chart within an A4 page; a larger store gets one chart per 40 rooms.
HEATMAP_ROOMS = 40


def coldchain_heatmaps(report: dict[str, Any], font: Path) -> list[bytes]:
    """Rooms x days, coloured by the share of the day's time in range; grey where there was no data. One chart
    per :data:`HEATMAP_ROOMS` rooms (at least one, empty and grey, for a month without rooms)."""
    rooms = report["coldchain"]["rooms"]
    parts = [rooms[i : i + HEATMAP_ROOMS] for i in range(0, len(rooms), HEATMAP_ROOMS)] or [[]]
    return [_heatmap(report, part, f" ({n}/{len(parts)})" if len(parts) > 1 else "", font) for n, part in
            enumerate(parts, start=1)]  # fmt: skip


def _heatmap(report: dict[str, Any], rooms: list[dict[str, Any]], part: str, font: Path) -> bytes:
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure

    cold = report["coldchain"]
    days = _days(cold["daily"])
    grid = np.full((max(len(rooms), 1), max(len(days), 1)), np.nan)
    for j, day in enumerate(cold["daily"]):
        for i, room in enumerate(rooms):
            value = day["rooms"].get(room["device_id"])
            if value is not None:
                grid[i, j] = value
    cmap = LinearSegmentedColormap.from_list(
        "inrange", ["#b2182b", "#fddbc7", "#f7f7f7", "#a6dba0", "#1b7837"]
    ).with_extremes(bad="#d9d9d9")
    with _style(font):
        height = 1.2 + 0.22 * max(len(rooms), 3)
        fig = Figure(figsize=(WIDTH_IN, height), layout="constrained")
        ax = fig.add_subplot()
        image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=90, vmax=100)
        ax.set_yticks(range(max(len(rooms), 1)))
        ax.set_yticklabels([r["name"] for r in rooms] or ["—"])
        _day_axis(ax, days)
        ax.set_title(f"每日温度合格率（%，灰色为无数据） Daily time in range (%, grey: no data){part}")
        bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, extend="min")
        bar.set_label("%")
        return _png(fig)


def site_compliance(report: dict[str, Any], font: Path) -> bytes:
    """The whole site's share of time in range, per day."""
    from matplotlib.figure import Figure

    daily = report["coldchain"]["daily"]
    days = _days(daily)
    values = [d["in_range_pct"] if d["in_range_pct"] is not None else float("nan") for d in daily]
    with _style(font):
        fig = Figure(figsize=(WIDTH_IN, 2.0), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(range(len(days)), values, marker="o", markersize=3, color="#1b7837")
        known = [v for v in values if v == v]
        ax.set_ylim(min([*known, 95.0]) - 0.5, 100.3)
        ax.set_ylabel("%")
        _day_axis(ax, days)
        ax.set_title("全园区每日温度合格率 Site time in range per day")
        ax.grid(axis="y", linewidth=0.3)
        return _png(fig)


def alerts_per_day(report: dict[str, Any], font: Path) -> bytes:
    from matplotlib.figure import Figure

    daily = report["alerts"]["daily"]
    days = _days(daily)
    with _style(font):
        fig = Figure(figsize=(WIDTH_IN, 2.4), layout="constrained")
        ax = fig.add_subplot()
        bottom = [0] * len(days)
        for severity in SEVERITY_ORDER:
            counts = [d[severity] for d in daily]
            zh, en = SEVERITIES[severity]
            ax.bar(range(len(days)), counts, bottom=bottom, color=SEVERITY_COLOURS[severity], label=f"{zh} {en}")
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        _day_axis(ax, days)
        ax.set_ylabel("告警数 alerts")
        ax.set_title("每日告警数（按级别） Alerts per day by severity")
        ax.legend(ncols=4, fontsize=7, frameon=False, loc="upper left")
        ax.set_ylim(0, max([*bottom, 1]) * 1.25)
        return _png(fig)


def passages_per_day(report: dict[str, Any], font: Path) -> bytes:
    from matplotlib.figure import Figure

    daily = report["gates"]["daily"]
    days = _days(daily)
    with _style(font):
        fig = Figure(figsize=(WIDTH_IN, 2.4), layout="constrained")
        ax = fig.add_subplot()
        x = range(len(days))
        ax.bar([i - 0.2 for i in x], [d["inbound"] for d in daily], width=0.4, color=IN_COLOUR, label="入区 inbound")
        ax.bar([i + 0.2 for i in x], [d["outbound"] for d in daily], width=0.4, color=OUT_COLOUR, label="出区 outbound")
        _day_axis(ax, days)
        ax.set_ylabel("通行次数 passages")
        ax.set_title("每日卡口通行 Gate passages per day")
        ax.legend(ncols=2, fontsize=7, frameon=False, loc="upper left")
        top = max([d["inbound"] for d in daily] + [d["outbound"] for d in daily] + [1])
        ax.set_ylim(0, top * 1.25)
        return _png(fig)


def fleet_energy(report: dict[str, Any], font: Path) -> bytes:
    """Electricity (bars, left) and hydrogen (line, right) per day, with the distance driven."""
    from matplotlib.figure import Figure

    daily = report["fleet"]["daily"]
    days = _days(daily)
    with _style(font):
        fig = Figure(figsize=(WIDTH_IN, 2.6), layout="constrained")
        ax = fig.add_subplot()
        x = list(range(len(days)))
        ax.bar(x, [d["energy_kwh"] for d in daily], color=KWH_COLOUR, alpha=0.8, label="耗电量 energy (kWh)")
        ax.set_ylabel("kWh")
        _day_axis(ax, days)
        right = ax.twinx()
        right.spines["right"].set_visible(True)
        right.plot(
            x, [d["h2_kg"] for d in daily], color=H2_COLOUR, marker="o", markersize=3, label="耗氢量 hydrogen (kg)"
        )
        right.set_ylabel("kg H₂")
        right.set_ylim(0, max([d["h2_kg"] for d in daily] + [1]) * 1.3)
        ax.set_ylim(0, max([d["energy_kwh"] for d in daily] + [1]) * 1.3)
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
        ax.legend(handles, labels, ncols=2, fontsize=7, frameon=False, loc="upper left")
        ax.set_title("车队每日能耗 Fleet energy per day")
        return _png(fig)
