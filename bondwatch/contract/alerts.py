"""Alert types and severities of contract v1 (the rules raise at least these)."""

from __future__ import annotations

from typing import Literal, get_args

AlertType = Literal[
    "temp_excursion",
    "temp_pre_alarm",
    "sensor_offline",
    "bonded_exit",
    "corridor_deviation",
    "gate_hold",
    "gps_lost",
    "low_soc",
]
ALERT_TYPES: tuple[str, ...] = get_args(AlertType)
Severity = Literal["critical", "major", "minor", "warning"]
# Judged on the platform's clock (silence), not on the readings' own ts.
SILENCE_ALERTS = ("sensor_offline", "gps_lost")
AlertStatus = Literal["active", "acknowledged", "cleared"]
# The severity each rule raises its alerts with (the contract fixes bonded_exit: critical).
SEVERITY: dict[str, Severity] = {
    "temp_excursion": "major",
    "temp_pre_alarm": "warning",
    "sensor_offline": "minor",
    "bonded_exit": "critical",
    "corridor_deviation": "major",
    "gate_hold": "major",
    "gps_lost": "minor",
    "low_soc": "warning",
}
