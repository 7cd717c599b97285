"""Stroke geometry of ink masks: the matra, one-pixel centre lines, and strokes redrawn at a width.

Shared by the font renderer (``bengaliai.synth.render``), the signs cut from a font
(``bengaliai.synth.fontsigns``) and the handwritten roots measured to draw them on
(``bengaliai.synth.realroot``). Deterministic: the widths come from the caller.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def headline_span(binary: np.ndarray) -> tuple[int, int, int, int] | None:
    """The matra: the fullest row in the upper part of the glyph, if it spans most of the ink."""
    rows = binary.sum(axis=1)
    inked = np.flatnonzero(rows)
    cols = np.flatnonzero(binary.any(axis=0))
    if len(inked) == 0:
        return None
    top, bottom = inked[0], inked[-1]
    upper = rows[top : top + max(1, int(0.5 * (bottom - top + 1)))]
    y = top + int(np.argmax(upper))
    if rows[y] < 0.45 * (cols[-1] - cols[0] + 1):
        return None
    strong = rows >= 0.6 * rows[y]
    y0, y1 = y, y + 1
    while y0 > 0 and strong[y0 - 1]:
        y0 -= 1
    while y1 < len(rows) and strong[y1]:
        y1 += 1
    xs = np.flatnonzero(binary[y])
    return (y0, y1, int(xs[0]), int(xs[-1]) + 1)


# Neighbours of a pixel in Zhang-Suen order p2..p9 (clockwise from the top) as (row, column) offsets.
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


@functools.cache
def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """For each of the 256 neighbourhoods (bit k = neighbour p(k+2)): may the pixel go in step 1, step 2?"""
    tables = np.zeros((2, 256), dtype=bool)
    for code in range(256):
        p = [(code >> k) & 1 for k in range(8)]  # p[0] = p2 ... p[7] = p9
        neighbours = sum(p)
        transitions = sum(p[k] == 0 and p[(k + 1) % 8] == 1 for k in range(8))
        p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
        common = 2 <= neighbours <= 6 and transitions == 1
        tables[0, code] = common and p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        tables[1, code] = common and p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return tables[0], tables[1]


def thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the one-pixel centre lines of a 0/1 mask, connectivity kept.

    Each sub-iteration codes every pixel's 8 neighbours as one byte and looks the decision up in a
    256-entry table, a few array operations per pass instead of dozens.
    """
    img = np.pad(binary.astype(np.uint8), 1)
    height, width = binary.shape
    tables = _thinning_tables()
    while True:
        changed = False
        for table in tables:
            code = np.zeros((height, width), dtype=np.uint8)
            for bit, (dy, dx) in enumerate(_RING):
                code |= img[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] << bit
            remove = table[code] & (img[1:-1, 1:-1] == 1)
            if remove.any():
                img[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1]


def stroke_width(binary: np.ndarray, centre: np.ndarray | None = None) -> float:
    """Typical stroke width of a 0/1 mask: twice the median distance to paper along the centre lines."""
    centre = thin(binary) > 0 if centre is None else centre
    if not centre.any():
        return 1.0
    framed = cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    inside = cv2.distanceTransform(framed, cv2.DIST_L2, 5)
    # The distance at a centre pixel counts the centre itself: a 5 px stroke measures 3.
    return max(1.0, 2.0 * float(np.median(inside[1:-1, 1:-1][centre])) - 1.0)


def set_stroke(ink: np.ndarray, current: float, target: float) -> np.ndarray:
    """Dilate or erode so that strokes come out about ``target`` pixels wide."""
    change = int(round(target - current))
    if change >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (change + 1, change + 1))
        return cv2.dilate(ink, kernel)
    # Erode only as far as keeps strokes at least ~2 pixels wide, so none break apart.
    change = min(-change, int(current) - 2)
    if change >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (change + 1, change + 1))
        return cv2.erode(ink, kernel)
    return ink


def pen_stroke(ink: np.ndarray, width: float) -> np.ndarray:
    """Redraw the strokes along their centre lines with a round pen ``width`` pixels wide."""
    centre = thin((ink > 127).astype(np.uint8)) * np.uint8(255)
    size = max(2, int(round(width)))
    return cv2.dilate(centre, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
