"""No SQL is built by formatting values into it: every value goes as a query parameter.

The scan finds every ``execute``/``executemany``/``copy``/``stream`` call whose query is an
f-string, a ``%`` or ``+`` expression or a ``str.format`` call, and looks at what is put in. A
module constant (``ALL_CAPS``) is fixed text; anything else must be listed below with the reason
it cannot carry input. A new formatted query fails here until someone has looked at it (or, better,
uses parameters, or ``psycopg.sql`` for identifiers).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "ingest", "rules", "bondwatch", "reports", "simulators", "edge", "bench")
METHODS = {"execute", "executemany", "copy", "stream"}
CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*$")

# (file, interpolated expression): why it cannot carry a client's or a device's input.
REVIEWED = {
    ("api/routers/alerts.py", "clause"): "joins fixed 'a.<column> = %s' fragments (columns from a literal tuple)",
    ("api/routers/geofences.py", "conflict"): "one of two literal ON CONFLICT clauses",
    ("ingest/writer.py", "spec.table"): "table names of the fixed reading specs (gps, temp, rfid)",
    ("ingest/writer.py", "cols"): "column names of the fixed reading specs",
    ("bondwatch/db/retention.py", "table"): "loops over the literal list of hypertables",
    ("bondwatch/db/stats.py", "table"): "loops over the literal list of reading tables",
    ("edge/queue.py", "marks"): "a run of '?' placeholders, one per id",
}


def _interpolated(node: ast.expr) -> list[str] | None:
    """The expressions formatted into a query, or None if the query is not built by formatting."""
    if isinstance(node, ast.JoinedStr):
        return [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        parts: list[str] = []
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant):
                continue
            inner = _interpolated(side)
            parts.extend(inner if inner is not None else [ast.unparse(side)])
        return parts
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
    ):
        return [ast.unparse(a) for a in node.args] + [ast.unparse(k.value) for k in node.keywords]
    return None


def formatted_queries() -> list[tuple[str, int, str]]:
    found: list[tuple[str, int, str]] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in METHODS
                    and node.args
                ):
                    for expr in _interpolated(node.args[0]) or []:
                        found.append((rel, node.lineno, expr))
    return found


def test_scanner_sees_formatted_queries() -> None:
    """The scan must find the reviewed cases, or it finds nothing at all."""
    seen = {(rel, expr) for rel, _, expr in formatted_queries()}
    assert ("ingest/writer.py", "spec.table") in seen


def test_no_query_formats_anything_but_constants_and_reviewed_names() -> None:
    unreviewed = [
        f"{rel}:{line}: {expr}"
        for rel, line, expr in formatted_queries()
        if not CONSTANT.match(expr) and (rel, expr) not in REVIEWED
    ]
    assert unreviewed == [], (
        "SQL built by formatting something that is not a constant; pass values as parameters "
        "(%s), identifiers with psycopg.sql, or review it and list it in REVIEWED: " + "; ".join(unreviewed)
    )
