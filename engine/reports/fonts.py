"""TrueType fonts for the PDFs, found on the system: one Unicode text font, and fallbacks for the
scripts it lacks (Chinese, Japanese, Korean ...).

The PDF core fonts cover Latin-1 only.  Text outside it (``NGUYỄN``, ``O’BRIEN``, ``王``) is
written with the first font of :data:`TEXT_FONTS` found, helped by every font of
:data:`FALLBACK_FONTS` found.  ``EDIRECON_FONT_DIRS`` (folders separated by ``os.pathsep``)
replaces the folders searched.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import NamedTuple

#: folders searched (recursively) when EDIRECON_FONT_DIRS is not set
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts", "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")
#: (regular, bold) file names of Unicode sans-serif text fonts, best first
TEXT_FONTS = (
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
    ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    ("FreeSans.ttf", "FreeSansBold.ttf"),
    ("Arial.ttf", "Arial Bold.ttf"),
    ("arial.ttf", "arialbd.ttf"),
)
#: file names of fonts with CJK (and other) glyphs the text fonts lack, best first
FALLBACK_FONTS = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf",
    "NotoSansSC-Regular.ttf",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "DroidSansFallbackFull.ttf",
    "DroidSansFallback.ttf",
    "uming.ttc",
    "ukai.ttc",
    "Arial Unicode.ttf",
    "msyh.ttc",
    "simsun.ttc",
    "unifont.ttf",
)


class Fonts(NamedTuple):
    """The font files found: the text font (None when there is none) and the fallbacks."""

    regular: Path | None
    bold: Path | None
    fallbacks: tuple[Path, ...]


def font_dirs() -> list[Path]:
    """The folders searched for fonts."""
    configured = os.environ.get("EDIRECON_FONT_DIRS")
    dirs = configured.split(os.pathsep) if configured is not None else list(FONT_DIRS)
    return [Path(d).expanduser() for d in dirs if d]


@functools.cache
def _find(dirs: tuple[Path, ...]) -> Fonts:
    wanted = {name for pair in TEXT_FONTS for name in pair} | set(FALLBACK_FONTS)
    found: dict[str, Path] = {}
    for folder in dirs:
        for root, _subdirs, files in os.walk(folder):
            for name in files:
                if name in wanted and name not in found:
                    found[name] = Path(root) / name
    regular = bold = None
    for r, b in TEXT_FONTS:
        if r in found:
            regular, bold = found[r], found.get(b)
            break
    return Fonts(regular, bold, tuple(found[name] for name in FALLBACK_FONTS if name in found))


def find_fonts() -> Fonts:
    """The fonts installed (searched once per set of folders)."""
    return _find(tuple(font_dirs()))
