"""Which list row each scanned row is: printed characters matched to font renderings, pages placed, labels verified.

Each printed-character crop and each candidate text (drawn by Pillow with raqm in a few bundled
fonts) becomes a histogram of gradient directions over a grid of its ink box, which compares
typefaces better than pixels do; the similarity of a crop and a text is the best cosine over the
fonts and over the forms a printer may have used (the conjunct, or its letters with a visible
hasanta; a bare sign with or without its dotted circle). Pages are placed in the list as whole blocks
of rows, the most certain first, so pages scanned out of order still land in their place; inside a
page a short alignment lets a skipped list row resynchronise. A row's expected label is accepted only
when no other text within ``window`` rows of it matches its printed character better, or, where the
printed code points (``bhcc_codes``) read exactly as the list says, when none matches clearly better;
a row whose code points read as something else is refused.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fonts import font_path

log = logging.getLogger(__name__)

# The four bundled fonts that, together, matched the corpus's printed characters best.
MATCH_FONTS: tuple[str, ...] = (
    "noto-sans-bengali-200.ttf", "anek-bangla-200.ttf", "noto-serif-bengali-300.ttf", "tiro-bangla-400.ttf",
)
_HASANTA, _ZWNJ, _NBSP = "\u09cd", "\u200c", "\u00a0"


@dataclass(frozen=True)
class MatchConfig:
    """How printed characters are matched, pages placed and rows verified."""

    fonts: tuple[str, ...] = MATCH_FONTS  # bundled font file names, or paths
    font_size: int = 48
    side: int = 40  # the ink box is fitted into a side x side square
    cells: int = 8  # gradient histograms on cells x cells
    bins: int = 8  # unsigned directions
    blur: float = 1.0
    window: int = 12  # the expected row competes with the texts of the rows this far either side
    min_similarity: float = 0.3  # below it a row (or a whole page) matches nothing
    skip_penalty: float = 0.3  # the cost, in similarity, of a list row that a page skips
    prior: float = 0.02  # bonus of a page's place in reading order (file names), to break near ties
    tie: float = 0.05  # a character this close to the best match passes if its code points read as expected


AGREE, DIFFER, UNREAD = "agree", "differ", "unread"  # the printed code points against the list's


@dataclass(frozen=True)
class RowMatch:
    """A page row's place in the list and whether its printed character (and code points) confirm it."""

    page: int
    row: int
    index: int | None  # the list row it is (None: its page could not be placed)
    best: int | None  # the list row whose text matches the printed character best within the window
    similarity: float  # with the expected text
    best_similarity: float
    glyph_best: bool  # the expected text is the best match (and not below min_similarity)
    codes: str = UNREAD
    verified: bool = False


def printed_mask(crop: np.ndarray) -> np.ndarray:
    """The printed character's ink in its cell: dark pixels (the threshold rises for faint print),
    specks, remnants touching the cell's border and stray marks away from the character dropped."""
    threshold = max(128, (int(crop.min()) + 255) // 2)
    _, labels, stats, _ = cv2.connectedComponentsWithStats((crop < threshold).astype(np.uint8), connectivity=8)
    h, w = crop.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    inner = (area >= 4) & (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    keep = np.flatnonzero(inner[1:]) + 1
    if len(keep) == 0:
        keep = np.flatnonzero(area[1:] >= 4) + 1
    if len(keep) > 1:  # a stray mark: a part well away from the largest part of the character
        big = keep[np.argmax(area[keep])]
        reach = 1.0 * bh[big]
        gap_x = np.maximum(x[keep] - (x[big] + bw[big]), x[big] - (x[keep] + bw[keep]))
        gap_y = np.maximum(y[keep] - (y[big] + bh[big]), y[big] - (y[keep] + bh[keep]))
        keep = keep[np.maximum(gap_x, gap_y) <= reach]
    return np.isin(labels, keep)


def text_forms(text: str) -> list[str]:
    """The ways a printer may draw a text: as shaped, with each hasanta kept visible, or (a bare
    sign) on a no-break space instead of a dotted circle."""
    forms = [text]
    if _HASANTA in text.rstrip(_HASANTA):
        forms.append(text.replace(_HASANTA, _HASANTA + _ZWNJ))
    if text and (text[0] in "ংঃ" or unicodedata.category(text[0]).startswith("M")):
        forms.append(_NBSP + text)
    return forms


class GlyphMatcher:
    """Features of printed crops and of rendered texts, and their similarities."""

    def __init__(self, config: MatchConfig = MatchConfig()) -> None:
        if not features.check("raqm"):
            raise BengaliaiError("Pillow cannot shape Bengali text (no raqm layout engine); install libraqm")
        self.config = config
        self._fonts = [ImageFont.truetype(str(font_path(n)), config.font_size, layout_engine=ImageFont.Layout.RAQM)
                       for n in config.fonts]

    def features(self, mask: np.ndarray) -> np.ndarray:
        """Unit vector of gradient-direction histograms over a grid of the mask's ink box."""
        c = self.config
        canvas = np.zeros((c.side, c.side), np.float32)
        ys, xs = np.nonzero(mask)
        if len(ys):
            ink = mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
            scale = c.side / max(ink.shape)
            h, w = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
            y0, x0 = (c.side - h) // 2, (c.side - w) // 2
            canvas[y0 : y0 + h, x0 : x0 + w] = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA)
        image = cv2.GaussianBlur(canvas, (0, 0), c.blur)
        gx, gy = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
        magnitude = np.hypot(gx, gy)
        direction = (np.arctan2(gy, gx) % np.pi) / np.pi * c.bins
        low = np.floor(direction).astype(int) % c.bins
        frac = direction - np.floor(direction)
        cell_blur = c.side / c.cells / 2
        hist = [
            cv2.resize(cv2.GaussianBlur(magnitude * ((low == b) * (1 - frac) + (low == (b - 1) % c.bins) * frac),
                                        (0, 0), cell_blur), (c.cells, c.cells), interpolation=cv2.INTER_AREA)
            for b in range(c.bins)
        ]
        vector = np.stack(hist).ravel()
        vector -= vector.mean()
        return vector / (np.linalg.norm(vector) + 1e-9)

    def render(self, text: str, font: int) -> np.ndarray:
        """The text shaped by raqm in one of the fonts, as a bool ink mask."""
        f = self._fonts[font]
        left, top, right, bottom = f.getbbox(text)
        image = Image.new("L", (max(1, right - left) + 4, max(1, bottom - top) + 4), 0)
        ImageDraw.Draw(image).text((2 - left, 2 - top), text, font=f, fill=255)
        return np.asarray(image) > 100

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """(texts, fonts x forms, dims); a text with fewer forms repeats its first."""
        forms = [text_forms(t) for t in texts]
        most = max((len(f) for f in forms), default=1)
        out = np.zeros((len(texts), len(self._fonts) * most, self.config.cells**2 * self.config.bins), np.float32)
        for i, variants in enumerate(forms):
            for font in range(len(self._fonts)):
                for k in range(most):
                    out[i, font * most + k] = self.features(self.render(variants[min(k, len(variants) - 1)], font))
        return out

    def similarity(self, crops: Sequence[np.ndarray], texts: Sequence[str]) -> np.ndarray:
        """(crops, texts): each printed crop against each text, the best font and form."""
        rendered = self.text_features(texts)
        printed = np.zeros((len(crops), rendered.shape[2]), np.float32)
        for i, crop in enumerate(crops):
            printed[i] = self.features(printed_mask(crop))
        return np.einsum("nd,tfd->ntf", printed, rendered, optimize=True).max(axis=2)


def match_rows(page_sizes: Sequence[int], sim: np.ndarray, texts: Sequence[str],
               config: MatchConfig = MatchConfig()) -> list[RowMatch]:
    """Every page row's list row and verdict; ``sim`` is (page rows in page order, list rows)."""
    starts = np.concatenate([[0], np.cumsum(page_sizes)]).astype(int)
    offsets = place_pages(page_sizes, sim, config)
    log.debug("pages placed at list rows %s", offsets)
    out = []
    for page, (start, size, offset) in enumerate(zip(starts, page_sizes, offsets)):
        block = sim[start : start + size]
        places = [None] * size if offset is None else align_page(block, offset, config.skip_penalty)
        for row, index in enumerate(places):
            out.append(_verify(page, row, index, block[row], texts, config))
    return out


def place_pages(page_sizes: Sequence[int], sim: np.ndarray, config: MatchConfig = MatchConfig()) -> list[int | None]:
    """Each page's first list row: the most certain pages take their best block of rows first; a
    page with no free block matching at least ``min_similarity`` on average stays unplaced."""
    total = sim.shape[1]
    starts = np.concatenate([[0], np.cumsum(page_sizes)]).astype(int)
    scores = []
    for start, size in zip(starts, page_sizes):
        block = sim[start : start + size]
        n = max(total - size + 1, 0)
        score = sum((block[i, i : i + n] for i in range(size)), np.zeros(n)) / max(size, 1)
        if 0 <= start < len(score):
            score[start] += config.prior
        scores.append(score)
    taken = np.zeros(total, dtype=bool)
    offsets: list[int | None] = [None] * len(page_sizes)
    for page in sorted(range(len(page_sizes)), key=lambda p: -(scores[p].max() if scores[p].size else -np.inf)):
        size = page_sizes[page]
        free = [o for o in np.argsort(-scores[page]) if not taken[o : o + size].any()]
        if free and scores[page][free[0]] >= config.min_similarity:
            offsets[page] = int(free[0])
            taken[free[0] : free[0] + size] = True
    return offsets


def align_page(block: np.ndarray, offset: int, penalty: float, slack: int = 2) -> list[int | None]:
    """The list row of each of a page's rows: strictly increasing, near ``offset``; each list row
    skipped (or each step away from ``offset`` at the start) costs ``penalty``."""
    size, total = block.shape
    lo, hi = max(offset - slack, 0), min(offset + size + slack, total)
    columns = range(lo, hi)
    best = np.full((size, len(columns)), -np.inf)
    back = np.zeros((size, len(columns)), dtype=int)
    for j, col in enumerate(columns):
        best[0, j] = block[0, col] - penalty * abs(col - offset)
    for i in range(1, size):
        for j in range(i, len(columns)):
            gains = best[i - 1, :j] - penalty * (j - np.arange(j) - 1)
            back[i, j] = int(np.argmax(gains))
            best[i, j] = gains[back[i, j]] + block[i, columns[j]]
    if not np.isfinite(best[-1]).any():
        return [None] * size
    places = [int(np.argmax(best[-1]))]
    for i in range(size - 1, 0, -1):
        places.append(int(back[i, places[-1]]))
    return [columns[j] for j in reversed(places)]


def settle(match: RowMatch, codes: str = UNREAD, config: MatchConfig = MatchConfig()) -> RowMatch:
    """The verdict: the printed character matches the expected text best, or, where the printed code
    points read exactly as expected, within ``tie`` of the best; never when the code points differ."""
    near = match.similarity >= config.min_similarity and match.best_similarity - match.similarity <= config.tie
    ok = match.index is not None and codes != DIFFER and (match.glyph_best or (codes == AGREE and near))
    return replace(match, codes=codes, verified=bool(ok))


def _verify(page: int, row: int, index: int | None, sims: np.ndarray, texts: Sequence[str],
            config: MatchConfig) -> RowMatch:
    if index is None:
        return RowMatch(page, row, None, None, 0.0, 0.0, False)
    lo, hi = max(index - config.window, 0), min(index + config.window + 1, len(texts))
    best = lo + int(np.argmax(sims[lo:hi]))
    ok = texts[best] == texts[index] and sims[index] >= config.min_similarity
    return settle(RowMatch(page, row, index, best, float(sims[index]), float(sims[best]), bool(ok)), UNREAD, config)
