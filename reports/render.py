"""One gathered report, three formats: JSON (the figures), CSV (one figure per row), PDF (for people)."""

from __future__ import annotations

from typing import Any

import orjson

from reports import FORMATS


def render(report: dict[str, Any], fmt: str, font: str = "") -> bytes:
    if fmt == "json":
        # UTF-8 as is (no \\u escapes), so the stored file reads in an editor; keys in the order written.
        return orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n"
    if fmt == "csv":
        from reports.csvout import render_csv

        return render_csv(report)
    if fmt == "pdf":
        from reports.pdf import render_pdf

        return render_pdf(report, font)
    raise ValueError(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
