"""MQTT topic names of contract version 1.

bw/v1/{site}/{kind}/{device_id}        kind: gps | temp | rfid | status   (device -> platform)
bw/v1/{site}/alerts/{type}                                                 (platform -> outside)
bw/v1/{site}/gate/{gate_id}/decision                                       (platform -> outside)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bondwatch.contract.errors import ContractViolation

PREFIX = "bw/v1"
READING_KINDS = ("gps", "temp", "rfid")
DEVICE_KINDS = (*READING_KINDS, "status")
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    site: str
    kind: str
    device_id: str

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/{self.kind}/{self.device_id}"


def parse_device_topic(topic: str) -> DeviceTopic:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise ContractViolation(f"topic {topic!r} is not bw/v1/{{site}}/{{kind}}/{{device_id}}")
    _, _, site, kind, device_id = parts
    if kind not in DEVICE_KINDS:
        raise ContractViolation(f"topic kind {kind!r} is not one of {', '.join(DEVICE_KINDS)}")
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ContractViolation(f"device_id {device_id!r} in topic does not match [A-Za-z0-9_.-]{{1,64}}")
    return DeviceTopic(site, kind, device_id)


def device_topic(site: str, kind: str, device_id: str) -> str:
    return f"{PREFIX}/{site}/{kind}/{device_id}"


def device_subscriptions(site: str) -> list[str]:
    return [device_topic(site, kind, "+") for kind in DEVICE_KINDS]


def alert_topic(site: str, alert_type: str) -> str:
    return f"{PREFIX}/{site}/alerts/{alert_type}"


def gate_decision_topic(site: str, gate_id: str) -> str:
    return f"{PREFIX}/{site}/gate/{gate_id}/decision"
