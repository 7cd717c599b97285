"""Where the bundled font files are: the renderer draws with them and the plots label Bengali ticks with one.

The fonts themselves (``bengaliai/fonts/*.ttf``, their licences and which graphemes each cannot
shape) are described in ``src/bengaliai/fonts/README.md``.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def bundled_font_dir() -> Path:
    """The folder of the fonts that ship with the package."""
    return Path(str(importlib.resources.files("bengaliai") / "fonts"))


def font_path(name: str) -> Path:
    """The path of a bundled font file name, or ``name`` itself if it is a path."""
    path = Path(name)
    if path.is_absolute() or path.exists():
        return path
    return bundled_font_dir() / name
