"""Finding a scanned table's ruling: its row and column lines, borders the scan cut off, and each cell cropped clean.

Works on an upright, level, binarised page (``bhcc_pages`` turns and levels it). Row lines are the
peaks of the row sums of long horizontal ink runs, kept where they are about evenly spaced (so the
page's edge and stray strokes drop out); column lines are the peaks of long vertical runs between the
first and last row line, less the shadow of the paper's edge (a line running on past the table). Where
the scan cut the table off, the lines that do run on past the last border give it back. Each cell's
four borders are then snapped to the nearest short line run beside them, since the columns added by
hand are ruled crookedly, and the crop has the ruling near its border whitened out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bengaliai.core.errors import DataError


def line_masks(ink: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical runs of ink at least ``length`` long; a pen line drifts, so each is
    first thickened across its direction."""
    thick_h, thick_v = cv2.dilate(ink, np.ones((5, 1), np.uint8)), cv2.dilate(ink, np.ones((1, 5), np.uint8))
    horizontal = cv2.morphologyEx(thick_h, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    vertical = cv2.morphologyEx(thick_v, cv2.MORPH_OPEN, np.ones((length, 1), np.uint8))
    return horizontal, vertical


def peaks(profile: np.ndarray, threshold: float) -> list[float]:
    """Centres (mass-weighted) of the runs where the profile exceeds the threshold."""
    above = np.concatenate([[False], profile > threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    out = []
    for start, stop in zip(edges[::2], edges[1::2]):
        weights = profile[start:stop].astype(np.float64)
        out.append(float((np.arange(start, stop) * weights).sum() / weights.sum()))
    return out


def even_run(lines: list[float]) -> list[float]:
    """The longest run of lines with about equal spacing: the table's rows, not page edges or titles."""
    if len(lines) < 3:
        return lines
    gaps = np.diff(lines)
    best: tuple[int, int] = (0, 1)
    for pitch in gaps:
        ok = np.abs(gaps - pitch) <= 0.2 * pitch
        start = 0
        for i in range(len(gaps) + 1):
            if i == len(gaps) or not ok[i]:
                if i - start > best[1] - best[0] - 1:
                    best = (start, i + 1)
                start = i + 1
    return lines[best[0] : best[1]]


@dataclass
class TableGrid:
    """The table's row lines (ys) and column lines (xs), with the short-run masks that refine them per cell."""

    ys: list[float]
    xs: list[float]
    horizontal: np.ndarray
    vertical: np.ndarray
    snap: float  # pixels a cell border may move to meet a line
    inset: int

    @classmethod
    def find(cls, ink: np.ndarray, path: Path, min_line: float = 0.3, snap: float = 0.25, inset: int = 3) -> TableGrid:
        """The grid of a binarised page (ink 255); DataError naming the page when there is none."""
        horizontal, vertical = line_masks(ink, max(ink.shape[1] // 25, 8))
        profile = horizontal.sum(axis=1, dtype=np.float64) / 255
        ys = even_run(peaks(profile, min_line * profile.max())) if profile.max() > 0 else []
        if len(ys) < 3:
            raise DataError(path, "no table found: fewer than 3 ruled rows")
        pitch = float(np.median(np.diff(ys)))
        top, bottom = int(ys[0]), int(ys[-1])
        vertical = cv2.morphologyEx(vertical, cv2.MORPH_OPEN, np.ones((max(int(1.5 * pitch), 3), 1), np.uint8))
        columns = vertical[top:bottom].sum(axis=0, dtype=np.float64) / 255
        xs = [x for x in peaks(columns, min_line * (bottom - top)) if _ends_with_table(vertical, x, top, bottom, pitch)]
        xs = _close_columns(xs, horizontal, ys, pitch)
        if len(xs) < 3:
            raise DataError(path, "no table found: fewer than 3 ruled columns")
        ys = _close_rows(ys, vertical, xs, pitch)
        # Short line runs (a fifth of the narrowest column) find the hand-drawn borders of each cell.
        local_h, local_v = line_masks(ink, max(int(0.2 * float(np.min(np.diff(xs)))), 8))
        return cls(ys, xs, local_h, local_v, snap * pitch, inset)

    def _snap(self, mask: np.ndarray, at: float, lo: int, hi: int, axis: int) -> int:
        """The line nearest ``at`` across the strip ``lo:hi`` of the mask (rows for axis 0), or ``at``."""
        start, stop = max(int(at - self.snap), 0), min(int(at + self.snap) + 1, mask.shape[axis])
        strip = mask[start:stop, lo:hi] if axis == 0 else mask[lo:hi, start:stop].T
        profile = strip.sum(axis=1, dtype=np.float64) / 255
        if profile.size == 0 or profile.max() < 0.4 * (hi - lo):
            return round(at)
        found = peaks(profile, 0.4 * (hi - lo))
        return start + round(min(found, key=lambda p: abs(start + p - at)))

    def cell(self, gray: np.ndarray, r: int, c: int) -> np.ndarray:
        """Row r, column c cropped inside its borders, with the ruling near them set to white."""
        x0, x1, y0, y1 = int(self.xs[c]), int(self.xs[c + 1]), int(self.ys[r]), int(self.ys[r + 1])
        top = self._snap(self.horizontal, y0, x0 + 4, x1 - 4, 0)
        bottom = self._snap(self.horizontal, y1, x0 + 4, x1 - 4, 0)
        left = self._snap(self.vertical, x0, top + 4, bottom - 4, 1)
        right = self._snap(self.vertical, x1, top + 4, bottom - 4, 1)
        a, b = max(top + self.inset, 0), min(bottom - self.inset + 1, gray.shape[0])
        p, q = max(left + self.inset, 0), min(right - self.inset + 1, gray.shape[1])
        crop = gray[a:b, p:q].copy()
        band = max(int(self.snap * 0.6), 4)
        ruling = np.zeros(crop.shape, dtype=bool)
        ruling[:band] |= self.horizontal[a : a + band, p:q] > 0
        ruling[-band:] |= self.horizontal[b - band : b, p:q] > 0
        ruling[:, :band] |= self.vertical[a:b, p : p + band] > 0
        ruling[:, -band:] |= self.vertical[a:b, q - band : q] > 0
        # Only runs that reach the crop's edge are the ruling: a head line written just inside stays.
        _, labels = cv2.connectedComponents(ruling.astype(np.uint8), connectivity=8)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        ruling = np.isin(labels, edge[edge > 0]).astype(np.uint8)
        crop[cv2.dilate(ruling, np.ones((3, 3), np.uint8)) > 0] = 255
        return _clear_border_lines(crop)


def _ends_with_table(vertical: np.ndarray, x: float, top: int, bottom: int, pitch: float) -> bool:
    """False for a line that goes on well above or below the table: the shadow of the scan's edge."""
    column = vertical[:, max(int(x) - 3, 0) : int(x) + 4].any(axis=1)
    above, below = column[: max(top - int(0.5 * pitch), 0)], column[bottom + int(0.5 * pitch) :]
    return all(part.size < pitch or part.mean() < 0.2 for part in (above, below))


def _close_columns(xs: list[float], horizontal: np.ndarray, ys: list[float], pitch: float) -> list[float]:
    """The column lines the row lines reach, a border where the scan cut the table off (the row lines
    run on past the last column line), and no sliver of a column at either end (the paper's edge)."""
    band = max(int(0.15 * pitch), 1)  # hand-drawn row lines run a little off the printed ones
    rows = [horizontal[max(int(y) - band, 0) : int(y) + band + 1].any(axis=0) for y in ys]
    starts = [np.flatnonzero(row)[0] for row in rows if row.any()]
    ends = [np.flatnonzero(row)[-1] for row in rows if row.any()]
    if not starts or not xs:
        return xs
    left, right = float(np.median(starts)), float(np.median(ends))
    xs = [x for x in xs if left - 0.5 * pitch <= x <= right + 0.5 * pitch]  # the row lines reach a border
    if not xs:
        return xs
    xs = ([left] if xs[0] - left > 0.5 * pitch else []) + xs + ([right] if right - xs[-1] > 0.5 * pitch else [])
    while len(xs) > 2 and xs[1] - xs[0] < 0.4 * pitch:
        xs = xs[1:]
    while len(xs) > 2 and xs[-1] - xs[-2] < 0.4 * pitch:
        xs = xs[:-1]
    return xs


def _close_rows(ys: list[float], vertical: np.ndarray, xs: list[float], pitch: float) -> list[float]:
    """A row line where the scan cut the table off: the column lines run on past the first or last
    row line by half a row or more (the cut row is kept, up to one row high)."""
    ends = [(_run_end(vertical, x, int(ys[0]), -1), _run_end(vertical, x, int(ys[-1]), 1)) for x in xs]
    top, bottom = float(np.median([e[0] for e in ends])), float(np.median([e[1] for e in ends]))
    if ys[0] - top > 0.5 * pitch:
        ys = [max(top, ys[0] - pitch), *ys]
    if bottom - ys[-1] > 0.5 * pitch:
        ys = [*ys, min(bottom, ys[-1] + pitch)]
    return ys


def _run_end(mask: np.ndarray, x: float, start: int, step: int) -> int:
    """Where the vertical line at ``x`` ends, going from row ``start`` by ``step`` (gaps of a few pixels bridged)."""
    column = mask[:, max(int(x) - 3, 0) : int(x) + 4].any(axis=1)
    pos, gap = start, 0
    while 0 <= pos + step < len(column) and gap <= 4:
        pos += step
        gap = 0 if column[pos] else gap + 1
    return pos - step * gap


def _clear_border_lines(crop: np.ndarray) -> np.ndarray:
    """Whitens what is left of a ruling line: ink touching the crop's border, long and thin along it."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats((crop < 160).astype(np.uint8), connectivity=8)
    h, w = crop.shape
    for i in range(1, count):
        x, y, bw, bh, _ = stats[i]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if touches and ((bh >= 0.5 * h and bw <= max(8, 0.08 * w)) or (bw >= 0.5 * w and bh <= max(8, 0.1 * h))):
            crop[labels == i] = 255
    return crop
