"""A tag's story as an EPCIS 2.0 JSON-LD document (GS1 EPCIS 2.0, CBV 2.0). Pure: no I/O.

One ``ObjectEvent`` (action ``OBSERVE``) per gate passage that saw the tag, and one per group of the
tag's reads that belong to no passage (a reader with no gate, reads the engine did not pair). Release
notes become business transactions of the passages they allowed; alerts and rides have no EPCIS
event of their own. The CBV values and the identifiers are explained in docs/traceability.md.

In EPCIS 2.0 JSON-LD the CBV values are bare words ("departing", "in_transit", "desadv"): the
context maps them to the CBV's URIs, and GS1's JSON schema refuses the ``urn:epcglobal:cbv:...``
forms in those fields.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from api.trace.timeline import epc_uri

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# Our own fields beside the standard ones (EPCIS extensions are namespaced properties in JSON-LD).
BW_NAMESPACE = "urn:bondwatch:epcis:"
# Names of eventIDs: the same passage gives the same eventID in every export, so a repository that
# receives a trace twice can tell the repeat.
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bondwatch:epcis:event")
READ_GROUP_GAP = timedelta(seconds=10)  # the rules engine's passage window


def passage_cbv(direction: str, decision: str | None) -> tuple[str, str, bool]:
    """(bizStep, disposition, whether the goods are still in the zone afterwards) of a passage."""
    if decision == "hold":
        return "holding", "non_sellable_other", True
    if direction == "in":
        return "arriving", "in_progress", True
    return "departing", "in_transit", False


def site_uri(site: str) -> str:
    return f"urn:bondwatch:{site}"


def gate_uri(site: str, gate_id: str) -> str:
    # A reader's gate_id may be any text of 1..64 characters: escape it into the URN's last part.
    return f"{site_uri(site)}:gate:{quote(gate_id, safe='-._~')}"


def reader_uri(site: str, device_id: str) -> str:
    return f"{site_uri(site)}:reader:{device_id}"


def release_note_uri(site: str, note_id: str) -> str:
    return f"{site_uri(site)}:release-note:{note_id}"


def document(story: dict[str, Any], site: str, tz: str, now: datetime | None = None) -> dict[str, Any]:
    """The EPCIS 2.0 document of a story from :func:`api.trace.timeline.assemble`.

    ``site`` names the readers and gates of reads outside passages (a passage names its own site);
    ``tz`` is the zone's time zone, for the document's creationDate.
    """
    events = [_passage_event(e) for e in story["events"] if e["kind"] == "passage"]
    events += [_read_group_event(group, site, story["uri"]) for group in _unpaired_read_groups(story["events"])]
    events.sort(key=lambda e: (e["eventTime"], e["eventID"]))
    created = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz))
    return {
        "@context": [CONTEXT, {"bw": BW_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(created),
        "epcisBody": {"eventList": events},
    }


def _passage_event(p: dict[str, Any]) -> dict[str, Any]:
    biz_step, disposition, stays = passage_cbv(p["direction"], p["decision"])
    site = p["site"]
    # One URI per tag, in the passage's order; two encodings of one GS1 key give one URI.
    epcs = list(dict.fromkeys(epc_uri(e)[0] for e in p["epcs"]))
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": _event_id(f"{site}/passage/{p['passage_id']}"),
        "eventTime": _time(p["first_read_at"]),
        "eventTimeZoneOffset": _offset(p["first_read_at"]),
        "epcList": epcs,
        "action": "OBSERVE",
        "bizStep": biz_step,
        "disposition": disposition,
        "readPoint": {"id": gate_uri(site, p["gate_id"])},
    }
    # bizLocation is where the goods are after the event: the zone, unless they have left it (CBV:
    # departing goods are in transit, at no business location).
    if stays:
        event["bizLocation"] = {"id": site_uri(site)}
    if p["release_note_id"]:
        event["bizTransactionList"] = [
            {"type": "desadv", "bizTransaction": release_note_uri(site, p["release_note_id"])}
        ]
    event["bw:passageId"] = p["passage_id"]
    if p["decision"]:
        event["bw:decision"] = p["decision"]
    codes = [r.get("code") for r in p["reasons"] if isinstance(r, dict)]
    if codes:
        event["bw:reasonCodes"] = codes
    if p["vehicle_id"]:
        event["bw:vehicleId"] = p["vehicle_id"]
    return event


def _unpaired_read_groups(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Reads in no passage, grouped per reader location: consecutive reads within 10 s of the first."""
    groups: list[list[dict[str, Any]]] = []
    open_groups: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["kind"] != "read" or e["passage_id"] is not None:
            continue
        key = f"gate:{e['gate_id']}" if e["gate_id"] else f"reader:{e['device_id']}"
        group = open_groups.get(key)
        if group is None or e["at"] - group[0]["at"] > READ_GROUP_GAP:
            group = open_groups[key] = []
            groups.append(group)
        group.append(e)
    return groups


def _read_group_event(reads: list[dict[str, Any]], site: str, uri: str) -> dict[str, Any]:
    first = reads[0]
    read_point = gate_uri(site, first["gate_id"]) if first["gate_id"] else reader_uri(site, first["device_id"])
    # No bizStep or disposition: a read with no passage is an observation, and claiming a business
    # step the platform did not decide would be inventing one.
    return {
        "type": "ObjectEvent",
        "eventID": _event_id(f"{site}/reads/{first['device_id']}/{first['at'].isoformat()}/{uri}"),
        "eventTime": _time(first["at"]),
        "eventTimeZoneOffset": _offset(first["at"]),
        "epcList": [uri],
        "action": "OBSERVE",
        "readPoint": {"id": read_point},
        "bw:reads": len(reads),
    }


def _event_id(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(EVENT_ID_NAMESPACE, name)}"


def _time(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def _offset(ts: datetime) -> str:
    """±HH:MM of the time as the database gave it (the zone's offset, +08:00)."""
    offset = ts.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
