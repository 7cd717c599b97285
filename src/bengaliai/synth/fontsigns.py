"""A grapheme's vowel signs and diacritics as a font draws them: the grapheme minus its bare root.

One font shapes both the grapheme and its bare root at the same size; the root is found inside the
grapheme by template matching (fewest mismatched pixels), and the signs are what the grapheme has
beyond the root dilated by about half a stroke. Where shaping changed the root itself (ক্র, ত্র,
ভ্র, গু in every bundled font, শু in most: a ligature), the root is not found intact (less than
``min_coverage`` of its ink) and the font is not used for that grapheme. Each sign is kept as the
links of its one-pixel centre line, so that it can be redrawn at any scale with any pen, plus the
point where it touched the root, so that it can be joined to a handwritten one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from bengaliai.synth.render import Renderer
from bengaliai.synth.strokes import headline_span, stroke_width, thin

_RING8 = ((0, 1), (1, -1), (1, 0), (1, 1))  # half of the 8 neighbours: each skeleton link once


@dataclass(frozen=True)
class Signs:
    """The signs of one grapheme in one font, in font pixels, relative to the bare root's ink box."""

    segments: list[np.ndarray]  # per sign: (n, 2, 2) centre-line links, as (x, y) end points
    anchors: list[np.ndarray | None]  # per sign: the (x, y) centre-line point nearest the root, if joined
    box: tuple[int, int, int, int]  # the bare root's ink, x0, y0, x1, y1 (exclusive ends)
    headline: float | None  # the y of the root's matra
    matra: tuple[float, float] | None  # x0, x1 of the grapheme's matra, where it continues the root's


@dataclass(frozen=True)
class FontParts:
    """A grapheme shaped in one font, split into its bare root and the rest (its signs)."""

    full: np.ndarray  # 0/1 mask of the grapheme
    placed: np.ndarray  # 0/1 mask of the bare root where it was found in the grapheme, same frame
    rest: np.ndarray  # 0/1: the grapheme's ink beyond the root dilated by about half a stroke
    origin: tuple[int, int]  # x, y of the bare root's box in the grapheme's frame
    root: np.ndarray  # 0/1 mask of the bare root as shaped alone (its box: origin and this shape)
    stroke: float
    radius: int  # how far the root was dilated before it was cut away


def font_parts(
    renderer: Renderer, font_index: int, text: str, root_text: str, min_coverage: float
) -> FontParts | None:
    """``text`` in one font split into its bare root and the rest; None where the root is not intact."""
    full = (renderer.shape(font_index, text) > 127).astype(np.uint8)
    root = (renderer.shape(font_index, root_text) > 127).astype(np.uint8)
    (fh, fw), (rh, rw) = full.shape, root.shape
    if rh > fh + 2 or rw > fw + 2:
        return None
    padded = cv2.copyMakeBorder(full, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0)
    # Fewest mismatched pixels: exact where the root is drawn unchanged inside the grapheme.
    cost = cv2.matchTemplate(padded.astype(np.float32), root.astype(np.float32), cv2.TM_SQDIFF)
    _, _, (x, y), _ = cv2.minMaxLoc(cost)
    x, y = x - 2, y - 2
    placed = np.zeros_like(padded)
    placed[y + 2 : y + 2 + rh, x + 2 : x + 2 + rw] = root
    placed = placed[2:-2, 2:-2]
    grown = cv2.dilate(full, np.ones((3, 3), np.uint8))
    if (grown & placed).sum() < min_coverage * root.sum():
        return None
    stroke = stroke_width(root)
    radius = max(2, int(math.ceil(0.5 * stroke)) + 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    rest = full & (1 - cv2.dilate(placed, kernel))
    return FontParts(full, placed, rest, (x, y), root, stroke, radius)


def extract_signs(
    renderer: Renderer, font_index: int, text: str, root_text: str, min_coverage: float
) -> Signs | None:
    """What ``text`` draws beyond ``root_text`` in one font, or None where the root is not intact in it."""
    parts = font_parts(renderer, font_index, text, root_text, min_coverage)
    if parts is None:
        return None
    full, placed, rest, stroke, radius = parts.full, parts.placed, parts.rest, parts.stroke, parts.radius
    (x, y), root = parts.origin, parts.root
    rh, rw = root.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(rest, connectivity=8)
    gap = cv2.distanceTransform(1 - placed, cv2.DIST_L2, 3)
    segments, anchors = [], []
    for label in range(1, n):
        if stats[label, cv2.CC_STAT_AREA] < max(6.0, 0.8 * stroke * stroke):
            continue  # a sliver of the root's outline, not a sign
        centre = thin((labels == label).astype(np.uint8))
        links = links_of(centre)
        if len(links) == 0:
            continue
        ys, xs = np.nonzero(centre)
        nearest = int(np.argmin(gap[ys, xs]))
        # Joined in the font: the sign touched the root before the root was cut away.
        touching = gap[labels == label].min() <= radius + 1.5
        segments.append(links - np.array([x, y], dtype=np.float32))
        anchors.append(np.array([xs[nearest] - x, ys[nearest] - y], dtype=np.float32) if touching else None)
    if not segments:
        return None
    line, whole = headline_span(root), headline_span(full)
    matra = None
    if line is not None and whole is not None and whole[0] <= y + line[1] and y + line[0] <= whole[1]:
        matra = (float(whole[2] - x), float(whole[3] - x))
    return Signs(segments, anchors, (0, 0, rw, rh), None if line is None else 0.5 * (line[0] + line[1]), matra)


def links_of(centre: np.ndarray) -> np.ndarray:
    """Each pair of 8-neighbouring centre-line pixels as one (2, 2) segment of (x, y) points."""
    pixels = list(zip(*(a.tolist() for a in np.nonzero(centre)), strict=True))  # row-major: a fixed order
    on = set(pixels)
    links = [((x, y), (x + dx, y + dy)) for y, x in pixels for dy, dx in _RING8 if (y + dy, x + dx) in on]
    if not links:  # a dot
        links = [((x, y), (x, y)) for y, x in pixels]
    return np.array(links, dtype=np.float32).reshape(-1, 2, 2)
