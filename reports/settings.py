"""Settings of the monthly report: ``BONDWATCH_REPORT_*`` (see docs/reports.md for the defaults' sources)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from bondwatch.db.settings import DbSettings


class ReportSettings(DbSettings):
    # --- when: the previous month's report is due on this day of the month, from this local hour.
    # Day 1-28 so that every month has it (每月25日通报).
    report_day: int = Field(default=25, ge=1, le=28)
    report_hour: int = Field(default=8, ge=0, le=23)
    report_timezone: str = "Asia/Shanghai"
    # How often `bondwatch serve` looks whether a report is due (it asks the table, so this is only latency).
    report_check_every_s: float = Field(default=300.0, gt=0, le=86_400)

    # --- who: the cover and the headings.
    report_site_name_zh: str = "鄂尔多斯综合保税区"
    report_site_name_en: str = "Ordos comprehensive bonded zone"
    report_customs_district: str = "0716"

    # --- CO2 avoided against a diesel truck doing the same kilometres (defaults and sources: docs/reports.md).
    # The same defaults as the Grafana zero-carbon dashboard (docs/dashboards.md), so the two agree.
    report_diesel_l_per_100km: float = Field(default=35.0, gt=0, le=100)
    report_diesel_kg_co2_per_l: float = Field(default=2.68, gt=0, le=10)
    # Inner Mongolia's 2022 provincial factor (MEE/NBS); the North China grid's is 0.6776.
    report_grid_kg_co2_per_kwh: float = Field(default=0.6849, ge=0, le=2)
    # Coal gasification, the usual route in Inner Mongolia (IEA 2023: 22-26); natural gas 11, renewables ~1.
    report_h2_kg_co2_per_kg: float = Field(default=22.0, ge=0, le=60)
    # energy_kwh counts what left the pack; the grid delivered more (charger and battery losses).
    report_charging_efficiency: float = Field(default=0.92, gt=0.5, le=1)

    # --- data completeness: readings each device is expected to send. 0 = the device's own median interval.
    report_cadence_gps_s: float = Field(default=0.0, ge=0, le=86_400)
    report_cadence_temp_s: float = Field(default=0.0, ge=0, le=86_400)

    # --- the PDF: a CJK TrueType font file (.ttf/.ttc); empty = the first one found (reports/fonts.py).
    report_font: str = ""

    @field_validator("report_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. Asia/Shanghai") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.report_timezone)
