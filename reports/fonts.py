"""The CJK font of the PDF and its charts: a TrueType file found on the system, embedded (subset) in the PDF.

ReportLab embeds TrueType outlines only (``.ttf``, or one face of a ``.ttc`` collection), not the CFF
outlines of most ``.otf`` files (Noto Sans CJK's), so the search prefers TrueType CJK fonts that Debian
packages: WenQuanYi Micro Hei (``fonts-wqy-microhei``, which the Makefile installs), WenQuanYi Zen Hei,
AR PL UMing, Droid Sans Fallback; then whatever fontconfig lists for Chinese. ``BONDWATCH_REPORT_FONT``
names a file instead. A font without the glyphs the report prints is refused, rather than printing boxes.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from functools import cache
from pathlib import Path

from bondwatch.errors import BondWatchError

CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
TRUETYPE = (".ttf", ".ttc")
PROBE = "鄂尔多斯综合保税区月度通报"  # characters of the title: a font must have them all
REPORTLAB_NAME = "BondWatchCJK"
_lock = threading.Lock()


class FontMissing(BondWatchError):
    """No CJK TrueType font: the PDF cannot be made (JSON and CSV still can)."""


def _has_glyphs(path: Path) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        face = FT2Font(str(path))
    except (OSError, RuntimeError, ValueError):
        return False
    return all(face.get_char_index(ord(ch)) for ch in PROBE)


def _fontconfig() -> list[Path]:
    if not shutil.which("fc-list"):
        return []
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    files = {Path(line.split(":")[0].strip()) for line in out.splitlines() if line.strip()}
    return sorted(p for p in files if p.suffix.lower() in TRUETYPE)


@cache
def find_cjk_font(configured: str = "") -> Path:
    """The font file to use; :class:`FontMissing` says how to get one."""
    if configured:
        path = Path(configured)
        if not path.is_file() or path.suffix.lower() not in TRUETYPE:
            raise FontMissing(f"BONDWATCH_REPORT_FONT={configured!r} is not a .ttf or .ttc file")
        if not _has_glyphs(path):
            raise FontMissing(f"BONDWATCH_REPORT_FONT={configured!r} lacks Chinese characters")
        return path
    for candidate in [Path(c) for c in CANDIDATES] + _fontconfig():
        if candidate.is_file() and _has_glyphs(candidate):
            return candidate
    raise FontMissing(
        "no Chinese TrueType font found for the PDF report: install one "
        "(apt-get install fonts-wqy-microhei) or set BONDWATCH_REPORT_FONT to a .ttf/.ttc file"
    )


def reportlab_font(path: Path) -> str:
    """Register the font with ReportLab once (first face of a collection); returns its name."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    with _lock:
        if REPORTLAB_NAME not in pdfmetrics.getRegisteredFontNames():
            kwargs = {"subfontIndex": 0} if path.suffix.lower() == ".ttc" else {}
            pdfmetrics.registerFont(TTFont(REPORTLAB_NAME, str(path), **kwargs))
            # One weight only: <b> in a paragraph maps to the same face instead of failing.
            for bold in (0, 1):
                for italic in (0, 1):
                    addMapping(REPORTLAB_NAME, bold, italic, REPORTLAB_NAME)
    return REPORTLAB_NAME


@cache
def matplotlib_family(path: Path) -> str:
    """Make the font known to matplotlib (once: it parses the whole file); returns its family name."""
    from matplotlib import font_manager

    with _lock:
        font_manager.fontManager.addfont(str(path))
        return str(font_manager.FontProperties(fname=str(path)).get_name())
