"""Whether a font shapes a text as one clean cluster: no missing character, tofu or dotted circle.

HarfBuzz (under Pillow's raqm layout) draws a dotted circle (U+25CC) before a mark that cannot join
the cluster in front of it, and the .notdef glyph (tofu) for a character the font cannot draw. Each
text is drawn twice, with the font and with a copy whose .notdef and dotted-circle glyphs are empty:
any difference means the shaper used one of them, so the text does not shape as one grapheme in that
font. The synthetic unseen graphemes (``bengaliai.synth.unseen``) are kept only where this check passes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import numpy as np
from fontTools.ttLib import TTFont
from fontTools.ttLib.tables._g_l_y_f import Glyph as TTGlyph
from PIL import Image, ImageDraw, ImageFont

from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fonts import font_path
from bengaliai.synth.render import require_raqm

log = logging.getLogger(__name__)

DOTTED_CIRCLE = 0x25CC
_SIZE = 40  # pixels per em: a dotted circle or a tofu box is then dozens of fully inked pixels
_MIN_PIXELS = 20


def _loaded(font: TTFont) -> ImageFont.FreeTypeFont:
    buffer = io.BytesIO()
    font.save(buffer)
    buffer.seek(0)
    return ImageFont.truetype(buffer, _SIZE, layout_engine=ImageFont.Layout.RAQM)


class ShapingCheck:
    """The clean-shaping check of one font file (a bundled font name or a path)."""

    def __init__(self, name: str) -> None:
        require_raqm()
        path = font_path(name)
        try:
            font = TTFont(path)
        except Exception as error:  # fontTools raises many kinds for a file that is not a font
            raise BengaliaiError(f"font {name!r}: cannot read {path} with fontTools ({error})") from None
        self.name = name
        self._cmap = font.getBestCmap()
        if DOTTED_CIRCLE not in self._cmap or "glyf" not in font:
            raise BengaliaiError(
                f"font {name!r} has no dotted circle (U+25CC) or no TrueType outlines, so broken clusters "
                "cannot be told apart from clean ones; use a TrueType font with U+25CC"
            )
        # Both fonts go through fontTools: saving alone can move a few anti-aliased pixels.
        self._real = _loaded(font)
        for glyph in {font.getGlyphOrder()[0], self._cmap[DOTTED_CIRCLE]}:
            font["glyf"][glyph] = TTGlyph()
        self._blank = _loaded(font)

    def _draw(self, font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
        # Wide enough for any grapheme with a dotted circle or two: nothing that differs is clipped.
        image = Image.new("L", (_SIZE * (len(text) + 6), 4 * _SIZE), 0)
        ImageDraw.Draw(image).text((2 * _SIZE, _SIZE), text, font=font, fill=255)
        return np.asarray(image, dtype=np.int16)

    def clean(self, text: str) -> bool:
        """True when every character is in the font and the shaped text uses no tofu or dotted circle."""
        if any(ord(char) not in self._cmap for char in text):
            return False
        # Editing one glyph can shift the hinting of others by a few grey levels.
        difference = np.abs(self._draw(self._real, text) - self._draw(self._blank, text)) > 100
        return int(difference.sum()) < _MIN_PIXELS


def clean_fonts(fonts: Sequence[str], texts: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """For each text, the indices of ``fonts`` that shape it cleanly (possibly none)."""
    checks = [ShapingCheck(name) for name in fonts]
    result = {text: tuple(i for i, check in enumerate(checks) if check.clean(text)) for text in texts}
    log.debug("shaping check: %d texts in %d fonts", len(texts), len(fonts))
    return result
