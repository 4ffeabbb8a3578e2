"""gate_passages.goods (migration 0008): each passage's pallets by goods class, always as the tag registry says now."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

Db = psycopg.Connection[tuple[Any, ...]]


def _epc() -> str:
    return "3035" + uuid.uuid4().hex[:20].upper()


def _tag(db: Db, epc: str, description: str | None, status: str = "bonded") -> None:
    db.execute(
        "INSERT INTO tags (epc, kind, customs_status, description) VALUES (%s, 'cargo', %s, %s)",
        (epc, status, description),
    )


def _passage(db: Db, cargo: list[str]) -> str:
    pid = "p-" + uuid.uuid4().hex[:12]
    db.execute(
        "INSERT INTO gate_passages (id, site, gate_id, direction, epcs, cargo_epcs, reads, readers, first_read_at, "
        "last_read_at, decision) VALUES (%s, 's', 'gate-1', 'out', %s, %s, 3, '{rdr}', now(), now(), 'pass')",
        (pid, cargo, cargo),
    )
    return pid


def _goods(db: Db, pid: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT g.description, g.customs_status, g.pallets FROM gate_passages p, unnest(p.goods) AS g WHERE p.id = %s",
        (pid,),
    ).fetchall()
    return sorted(
        ({"description": d, "customs_status": c, "pallets": n} for d, c, n in rows), key=lambda g: str(g["description"])
    )


def test_goods_follow_the_registry(db: Db) -> None:
    wine, salmon, unknown = _epc(), _epc(), _epc()
    _tag(db, wine, "进口红酒 imported wine")
    _tag(db, salmon, "冰鲜三文鱼 chilled salmon", "non_bonded")
    pid = _passage(db, [wine, wine.replace("3035", "3036", 1), salmon, unknown])
    assert _goods(db, pid) == sorted(
        [
            {"description": "进口红酒 imported wine", "customs_status": "bonded", "pallets": 1},
            {"description": "冰鲜三文鱼 chilled salmon", "customs_status": "non_bonded", "pallets": 1},
            {"description": None, "customs_status": None, "pallets": 2},
        ],
        key=lambda g: str(g["description"]),
    )
    # Registered later, renamed, removed: the passage's goods follow each time.
    _tag(db, unknown, "进口红酒 imported wine")
    db.execute("UPDATE tags SET description = '智利红酒 Chilean wine' WHERE epc = %s", (wine,))
    db.execute("DELETE FROM tags WHERE epc = %s", (salmon,))
    assert _goods(db, pid) == sorted(
        [
            {"description": "进口红酒 imported wine", "customs_status": "bonded", "pallets": 1},
            {"description": "智利红酒 Chilean wine", "customs_status": "bonded", "pallets": 1},
            {"description": None, "customs_status": None, "pallets": 2},
        ],
        key=lambda g: str(g["description"]),
    )
    # Always what joining the registry gives.
    row = db.execute(
        "SELECT goods = bondwatch_passage_goods(cargo_epcs) FROM gate_passages WHERE id = %s", (pid,)
    ).fetchone()
    assert row == (True,)
