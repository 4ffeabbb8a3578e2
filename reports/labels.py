"""Chinese and English names of the codes the report shows (alert types, severities, hold reasons, ...)."""

from __future__ import annotations

ALERT_TYPES: dict[str, tuple[str, str]] = {
    "temp_excursion": ("温度超限", "Temperature excursion"),
    "temp_pre_alarm": ("温度预警", "Temperature pre-alarm"),
    "sensor_offline": ("传感器离线", "Sensor offline"),
    "bonded_exit": ("保税车辆越界出区", "Bonded vehicle left the zone"),
    "corridor_deviation": ("偏离监管通道", "Corridor deviation"),
    "gate_hold": ("卡口拦截", "Gate hold"),
    "gps_lost": ("定位信号丢失", "GPS lost"),
    "low_soc": ("电量过低", "Low state of charge"),
}
SEVERITIES: dict[str, tuple[str, str]] = {
    "critical": ("紧急", "critical"),
    "major": ("重要", "major"),
    "minor": ("次要", "minor"),
    "warning": ("提示", "warning"),
}
SEVERITY_ORDER = ("critical", "major", "minor", "warning")
HOLD_REASONS: dict[str, tuple[str, str]] = {
    "no_vehicle_tag": ("未读到车辆标签", "no vehicle tag read"),
    "several_vehicles": ("同时读到多辆车", "several vehicles read"),
    "no_release_note": ("无有效核放单", "no valid release note"),
    "bonded_without_note": ("保税货物无核放单", "bonded goods without a note"),
    "not_on_note": ("货物不在核放单上", "cargo not on the note"),
}
DEVICE_KINDS: dict[str, tuple[str, str]] = {
    "gps": ("车载定位终端", "vehicle GNSS terminal"),
    "temp": ("冷库温度传感器", "cold-room sensor"),
    "rfid": ("卡口RFID读写器", "gate RFID reader"),
}
POWERTRAINS: dict[str, tuple[str, str]] = {
    "bev": ("纯电动", "battery electric"),
    "fcev": ("氢燃料电池", "hydrogen fuel cell"),
    "unknown": ("未知", "no energy data"),
}
DIRECTIONS: dict[str, tuple[str, str]] = {"in": ("入区", "inbound"), "out": ("出区", "outbound")}


def both(table: dict[str, tuple[str, str]], code: str | None) -> str:
    """``中文 English`` for a code, the code itself when it is not known."""
    if code is None:
        return ""
    zh, en = table.get(code, (code, ""))
    return f"{zh} {en}".strip()
