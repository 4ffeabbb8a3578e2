"""Sort each inbound message into readings to store or a dead letter with its reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bondwatch.contract.errors import ContractViolation
from bondwatch.contract.payloads import Reading, StatusMessage, validate_payload
from bondwatch.contract.topics import parse_device_topic
from ingest.mqtt import InboundMessage


@dataclass(frozen=True, slots=True)
class Accepted:
    message: InboundMessage
    kind: str
    device_id: str
    items: Sequence[Reading | StatusMessage]


@dataclass(frozen=True, slots=True)
class Rejected:
    message: InboundMessage
    reason: str
    kind: str | None = None
    device_id: str | None = None


def triage(message: InboundMessage, site: str) -> Accepted | Rejected:
    try:
        topic = parse_device_topic(message.topic)
    except ContractViolation as exc:
        return Rejected(message, str(exc))
    if topic.site != site:
        return Rejected(
            message, f"topic site {topic.site!r} is not this platform's site {site!r}", topic.kind, topic.device_id
        )
    try:
        items = validate_payload(topic.kind, message.payload)
    except ContractViolation as exc:
        return Rejected(message, str(exc), topic.kind, topic.device_id)
    return Accepted(message, topic.kind, topic.device_id, items)  # type: ignore[arg-type]
