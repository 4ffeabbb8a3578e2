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
from collections.abc import Callable
from typing import Literal

from edge.protocols.epc import pure_identity_uri
from rules.effects import PassageOutcome, Reason
from rules.registry import Registry

# Reasons named tag by tag; beyond this a passage is not one truck's load (a reader left reading an
# aisle), and one more reason says how many tags were like that.
TAG_REASONS_CAP = 50


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
        unnoted = [e for e in cargo if registry.tags.get(e) is None or registry.tags[e].customs_status == "bonded"]
        reasons += _per_tag("bonded_without_note", unnoted, lambda epc: _without_note(registry, epc))
        return outcome("hold", reasons)
    best = max(notes, key=lambda n: (len(n.epcs.intersection(cargo)), -n.valid_from, n.id))
    unlisted = [e for e in cargo if e not in best.epcs]
    reasons += _per_tag(
        "not_on_note",
        unlisted,
        lambda epc: (
            f"货物标签 {describe(epc)} 未列入核放单 {best.id} / cargo tag {epc} is not on release note {best.id}"
        ),
    )
    missing = tuple(sorted(best.epcs.difference(cargo)))
    return outcome("hold" if reasons else "pass", reasons, best.id, missing)


def _without_note(registry: Registry, epc: str) -> str:
    registered = epc in registry.tags
    what_zh, what_en = ("保税货物", "bonded goods") if registered else ("未登记标签", "unregistered tag")
    return f"{what_zh} {describe(epc)} 无核放单出区 / {what_en} {epc} leaving without a release note"


def _per_tag(code: str, epcs: list[str], text: Callable[[str], str]) -> list[Reason]:
    """One reason per tag, up to the cap; then one that counts the rest."""
    reasons = [Reason(code, text(epc), epc) for epc in epcs[:TAG_REASONS_CAP]]
    if len(epcs) > TAG_REASONS_CAP:
        more = len(epcs) - TAG_REASONS_CAP
        reasons.append(Reason(code, f"另有 {more} 个标签同上 / and {more} more tags alike"))
    return reasons


def _is_vehicle_tag(registry: Registry, epc: str) -> bool:
    tag = registry.tags.get(epc)
    return tag is not None and tag.kind == "vehicle"
