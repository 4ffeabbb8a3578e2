"""Shared by the dashboard tests and their conftest: the dashboards on disk, and the measured query times."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"

# (dashboard uid, panel title, time window, milliseconds, rows), printed by conftest.pytest_terminal_summary.
TIMINGS: list[tuple[str, str, str, float, int]] = []


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def record_timing(dashboard: str, panel: str, window: str, ms: float, rows: int) -> None:
    TIMINGS.append((dashboard, panel, window, ms, rows))


@dataclass
class SeededDb:
    url: str  # the services' (writer) login
    admin_url: str
    readonly_url: str
    start: datetime
    end: datetime
    seconds: float  # how long seeding took
    summary: Any
