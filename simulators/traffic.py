"""Contract traffic for load runs and ingest tests: valid readings, repeats, batches, malformed messages.

Deterministic for a given seed. Every generated message knows what the platform must do with it:
store its readings (identified by device_id and seq) or keep it as a dead letter for a reason.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from bondwatch.contract.topics import device_topic

# Ordos comprehensive bonded zone, roughly: readings scatter around it.
ORDOS = (39.6086, 109.7810)
BASE_TS = datetime(2026, 11, 1, tzinfo=UTC)
CST = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    kind: str
    readings: tuple[tuple[str, int], ...] = ()  # (device_id, seq) of each valid reading
    malformed: str | None = None  # the defect's category; the dead letter's reason must name it


@dataclass
class TrafficGenerator:
    site: str
    seed: int = 716
    devices_per_kind: int = 20
    # Live traffic: readings stamped with the wall clock and seq starting from it, so a restarted
    # simulator never reuses a seq. Otherwise a fixed, reproducible timeline.
    live: bool = False
    rng: random.Random = field(init=False)
    _seq: dict[str, int] = field(default_factory=dict, init=False)
    _tick: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def device(self, kind: str) -> str:
        return f"{self.site}-{kind}-{self.rng.randrange(self.devices_per_kind):03d}"

    def reading(self, kind: str, device_id: str) -> dict[str, object]:
        now = datetime.now(UTC)
        seq = self._seq.get(device_id, int(now.timestamp() * 1000) if self.live else 0)
        self._seq[device_id] = seq + 1
        self._tick += 1
        ts = now if self.live else BASE_TS + timedelta(milliseconds=self._tick * 250)
        # Both ts forms of the contract: integer milliseconds and RFC 3339 with the zone's offset.
        ts_value: object = (
            int(ts.timestamp() * 1000) if self._tick % 2 else ts.astimezone(CST).isoformat(timespec="milliseconds")
        )
        r = self.rng
        if kind == "gps":
            return {
                "ts": ts_value,
                "seq": seq,
                "lat": ORDOS[0] + r.uniform(-0.05, 0.05),
                "lon": ORDOS[1] + r.uniform(-0.05, 0.05),
                "fix": "3d",
                "speed_kmh": round(r.uniform(0, 80), 1),
                "heading_deg": round(r.uniform(0, 359.9), 1),
                "hdop": 0.9,
                "sats": 14,
                "soc_pct": round(r.uniform(20, 100), 1),
                "energy_kwh": round(r.uniform(0, 5000), 2),
                "odometer_km": round(r.uniform(0, 90000), 1),
            }
        if kind == "temp":
            return {
                "ts": ts_value,
                "seq": seq,
                "temp_c": round(r.uniform(-20, 6), 2),
                "rh_pct": round(r.uniform(60, 95), 1),
                "door_open": r.random() < 0.05,
                "battery_v": 3.6,
            }
        return {
            "ts": ts_value,
            "seq": seq,
            "epc": f"3034{r.getrandbits(80):020X}",
            "antenna": r.randrange(1, 5),
            "rssi_dbm": round(r.uniform(-75, -40), 1),
            "gate_id": f"gate-{device_id}",  # each reader at a gate of its own, as at a real site
            "direction": r.choice(["in", "out"]),
        }

    def valid(self, kind: str, batch_size: int = 1) -> Message:
        device_id = self.device(kind)
        items = [self.reading(kind, device_id) for _ in range(batch_size)]
        payload = orjson.dumps(items if batch_size > 1 else items[0])
        keys = tuple((device_id, int(i["seq"])) for i in items)  # type: ignore[call-overload]
        return Message(device_topic(self.site, kind, device_id), payload, kind, keys)

    def stream(
        self, count: int, repeat_ratio: float = 0.05, batch_ratio: float = 0.02, max_batch: int = 20
    ) -> Iterator[Message]:
        """``count`` messages of the three kinds; a share are exact repeats, a share are batches."""
        sent: list[Message] = []
        kinds = ("gps", "temp", "rfid")
        for _ in range(count):
            roll = self.rng.random()
            if sent and roll < repeat_ratio:
                message = self.rng.choice(sent)
            elif roll < repeat_ratio + batch_ratio:
                message = self.valid(self.rng.choice(kinds), self.rng.randrange(2, max_batch + 1))
            else:
                message = self.valid(self.rng.choice(kinds))
            sent.append(message)
            yield message

    def malformed(self, count: int) -> Iterator[Message]:
        """``count`` messages, cycling through every kind of defect the contract forbids."""
        makers = [
            self._bad_json,
            self._missing_field,
            self._mistyped_field,
            self._out_of_range,
            self._bad_ts,
            self._oversized,
            self._not_utf8,
            self._batch_too_long,
            self._bad_epc,
            self._bad_topic_device,
        ]
        for i in range(count):
            yield makers[i % len(makers)]()

    def _bad(self, kind: str, payload: bytes, defect: str, device_id: str | None = None) -> Message:
        device_id = device_id or self.device(kind)
        return Message(device_topic(self.site, kind, device_id), payload, kind, (), defect)

    def _ok_fields(self, kind: str) -> dict[str, object]:
        return self.reading(kind, f"{self.site}-scratch")

    def _bad_json(self) -> Message:
        text = orjson.dumps(self._ok_fields("temp"))[:-1]  # cut the closing brace
        return self._bad("temp", text, "not JSON")

    def _missing_field(self) -> Message:
        fields = self._ok_fields("gps")
        del fields["lat"]
        return self._bad("gps", orjson.dumps(fields), "required field 'lat' is missing")

    def _mistyped_field(self) -> Message:
        fields = self._ok_fields("temp")
        fields["temp_c"] = str(fields["temp_c"])
        return self._bad("temp", orjson.dumps(fields), "field 'temp_c'")

    def _out_of_range(self) -> Message:
        fields = self._ok_fields("gps")
        fields["lat"] = 91.5
        return self._bad("gps", orjson.dumps(fields), "field 'lat'")

    def _bad_ts(self) -> Message:
        fields = self._ok_fields("rfid")
        fields["ts"] = "25/11/2026 08:00"
        return self._bad("rfid", orjson.dumps(fields), "not RFC 3339")

    def _oversized(self) -> Message:
        fields = self._ok_fields("temp")
        fields["note"] = "x" * (300 * 1024)
        return self._bad("temp", orjson.dumps(fields), "over the 256 KiB")

    def _not_utf8(self) -> Message:
        return self._bad("temp", b'{"ts": 1764000000000, "seq": 1, "temp_c": 2.5, "x": "\xff\xfe"}', "not UTF-8")

    def _batch_too_long(self) -> Message:
        item = self._ok_fields("temp")
        return self._bad("temp", orjson.dumps([item] * 1001), "over the limit of 1000")

    def _bad_epc(self) -> Message:
        fields = self._ok_fields("rfid")
        fields["epc"] = "30340ZZZ"
        return self._bad("rfid", orjson.dumps(fields), "epc must be hexadecimal")

    def _bad_topic_device(self) -> Message:
        return self._bad("gps", orjson.dumps(self._ok_fields("gps")), "does not match", device_id="bad!id")
