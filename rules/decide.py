"""The customs gate's decision for one outbound passage: ``pass`` or ``hold``, with every reason.

A passage passes when exactly one vehicle tag was read, the vehicle has a release note (核放单)
valid at the passage's first read and not used by another passage, and every cargo tag read is
listed on that note. Otherwise it is held, and each reason names what is wrong:

- ``no_vehicle_tag`` / ``several_vehicles``: who is leaving is unknown;
- ``no_release_note``: no valid, unused note for the vehicle (an empty truck needs one too, as an
  empty-vehicle note), with ``bonded_without_note`` for each bonded (or unregistered) cargo tag;
- ``not_on_note``: a cargo tag the best-matching note does not list.

Tags listed on the note but not read are reported as ``missing_epcs`` without holding the truck:
a tag on a pallet in the middle of a load is often not read.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from edge.protocols.epc import pure_identity_uri
from rules.effects import PassageOutcome, Reason
from rules.registry import Registry


def describe(epc: str) -> str:
    uri = pure_identity_uri(epc)
    return f"{epc}（{uri}）" if uri else epc


def direction_of(directions: list[str | None]) -> Literal["in", "out"]:
    """The direction most reads report; outbound when they do not say, since outbound is what customs checks."""
    counts = Counter(d for d in directions if d)
    return "in" if counts["in"] > counts["out"] else "out"


def decide(
    passage_id: str,
    gate_id: str,
    epcs: list[str],
    directions: list[str | None],
    readers: list[str],
    reads: int,
    first_read: float,
    last_read: float,
    registry: Registry,
) -> PassageOutcome:
    direction = direction_of(directions)
    vehicles = sorted({registry.vehicle_by_tag[e] for e in epcs if e in registry.vehicle_by_tag})
    vehicle_tags = {e for e in epcs if e in registry.vehicle_by_tag}
    cargo = [e for e in epcs if e not in vehicle_tags and not _is_vehicle_tag(registry, e)]
    vehicle_id = vehicles[0] if len(vehicles) == 1 else None
    vehicle_epc = next((e for e in epcs if registry.vehicle_by_tag.get(e) == vehicle_id), None) if vehicle_id else None

    def outcome(
        decision: Literal["pass", "hold"] | None,
        reasons: list[Reason],
        note_id: str | None = None,
        missing: tuple[str, ...] = (),
    ) -> PassageOutcome:
        return PassageOutcome(
            passage_id,
            gate_id,
            direction,
            vehicle_id,
            vehicle_epc,
            tuple(epcs),
            tuple(cargo),
            reads,
            tuple(readers),
            first_read,
            last_read,
            decision,
            tuple(reasons),
            note_id,
            missing,
        )

    if direction == "in":
        return outcome(None, [])
    reasons: list[Reason] = []
    if not vehicles:
        reasons.append(Reason("no_vehicle_tag", "未读到车辆标签，无法确认出区车辆 / no vehicle tag was read"))
    elif len(vehicles) > 1:
        reasons.append(
            Reason(
                "several_vehicles",
                f"一次通行读到多辆车（{'、'.join(vehicles)}） / several vehicles in one passage: {', '.join(vehicles)}",
            )
        )
    notes = [n for n in registry.notes_for(vehicle_id) if n.usable(first_read, passage_id)] if vehicle_id else []
    if not notes:
        if vehicle_id:
            plate = registry.vehicles[vehicle_id].plate
            reasons.append(
                Reason(
                    "no_release_note",
                    f"车辆 {plate}（{vehicle_id}）无有效核放单 / no valid release note for vehicle {vehicle_id}",
                )
            )
        for epc in cargo:
            tag = registry.tags.get(epc)
            if tag is None or tag.customs_status == "bonded":
                what = "保税货物" if tag else "未登记标签"
                reasons.append(
                    Reason(
                        "bonded_without_note",
                        f"{what} {describe(epc)} 无核放单出区 / "
                        f"{'bonded goods' if tag else 'unregistered tag'} {epc} leaving without a release note",
                        epc,
                    )
                )
        return outcome("hold", reasons)
    best = max(notes, key=lambda n: (len(n.epcs.intersection(cargo)), -n.valid_from, n.id))
    for epc in cargo:
        if epc not in best.epcs:
            reasons.append(
                Reason(
                    "not_on_note",
                    f"货物标签 {describe(epc)} 未列入核放单 {best.id} / "
                    f"cargo tag {epc} is not on release note {best.id}",
                    epc,
                )
            )
    missing = tuple(sorted(best.epcs.difference(cargo)))
    return outcome("hold" if reasons else "pass", reasons, best.id, missing)


def _is_vehicle_tag(registry: Registry, epc: str) -> bool:
    tag = registry.tags.get(epc)
    return tag is not None and tag.kind == "vehicle"
