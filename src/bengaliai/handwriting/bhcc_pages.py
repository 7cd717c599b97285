"""Reading one scanned page of the Bangla Handwriting Character Corpus: its table's rows as cell crops.

The corpus (github.com/MdSaim5888/Bangla-Handwriting-Character-Corpus, MIT; the user fetches it) is
scans of printed tables, 11 or 12 rows a page (the last page fewer, the first one with a header
row). Each row: the printed character, 3 cells written by hand (Format1-3), the printed code points
(``U+0998 U+09BF``) and, on the five-format pages, 2 more hand cells (Format4-5) in columns drawn by
hand to the right of the printed table. ``read_page`` binarises the scan, turns it upright (90
degree turns by the direction of the ruling, 180 by where the wide code-point column sits), removes
the skew (the angle that makes the row lines sharpest), finds the ruling (``bhcc_grid``) and crops
the cells, dropping the title row of the first page. Anything it cannot read is a one-line
``DataError`` naming the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bengaliai.core.errors import DataError
from bengaliai.handwriting.bhcc_grid import TableGrid, line_masks

log = logging.getLogger(__name__)

PRINTED_COLUMNS = 5  # character, 3 hand cells, code points
CODE_POINT_COLUMN = 4
LAYOUTS = {PRINTED_COLUMNS: 3, PRINTED_COLUMNS + 2: 5}  # columns in the table -> hand cells per row


@dataclass(frozen=True)
class PageConfig:
    """How a page is read; lengths are in pixels of the scan unless said otherwise."""

    rows: tuple[int, int] = (11, 12)  # data rows a page holds (a header row not counted)
    max_skew: float = 3.0  # degrees searched either way
    skew_step: float = 0.1
    skew_width: int = 800  # the skew is measured on the scan shrunk to this width
    block: int = 41  # adaptive threshold: neighbourhood and offset below its mean
    offset: int = 15
    min_line: float = 0.3  # a row line spans this share of the widest one; a column line of the table's height
    inset: int = 3  # pixels dropped inside each cell border
    snap: float = 0.25  # a cell border moves to a line at most this share of the row height away


@dataclass(frozen=True)
class TableRow:
    """One data row of a page: grayscale crops (dark ink on white), ruling lines whitened out."""

    row: int  # place among the page's data rows, from 0 at the top
    printed: np.ndarray
    hand: tuple[np.ndarray, ...]  # Format1..Format5, left to right
    code_points: np.ndarray


@dataclass(frozen=True)
class PageTable:
    """A page's data rows, top to bottom, and how its scan had to be turned to read them."""

    path: Path
    turned: int  # degrees the scan was turned (counter-clockwise) to stand upright: 0, 90, 180 or 270
    skew: float  # degrees the upright scan was rotated to make its lines level
    header: bool  # the page's first row was the column titles (dropped)
    rows: tuple[TableRow, ...]

    @property
    def hand_columns(self) -> int:
        return len(self.rows[0].hand) if self.rows else 0


def read_page(path: Path, config: PageConfig = PageConfig(), min_rows: int | None = None) -> PageTable:
    """The table of one scanned page; ``min_rows`` lowers ``config.rows[0]`` (the corpus's last page)."""
    gray = _load(path)
    turned, skew = 0, 0.0
    if _is_turned(_binarise(gray, config)):
        gray, turned = cv2.rotate(gray, cv2.ROTATE_90_COUNTERCLOCKWISE), 90
    for _ in range(2):
        ink = _binarise(gray, config)
        angle = _skew(ink, config)
        skew += angle  # rotations about the centre commute with the half turn
        h, w = gray.shape
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        gray = cv2.warpAffine(gray, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=255)
        ink = _binarise(gray, config)
        grid = TableGrid.find(ink, path, config.min_line, config.snap, config.inset)
        wide = int(np.argmax(np.diff(grid.xs)))
        if wide == CODE_POINT_COLUMN or len(grid.xs) - 2 - wide != CODE_POINT_COLUMN:
            break
        gray, turned = cv2.rotate(gray, cv2.ROTATE_180), turned + 180
    columns = len(grid.xs) - 1
    if columns not in LAYOUTS or wide != CODE_POINT_COLUMN:
        raise DataError(
            path, f"unknown layout: {columns} columns with the widest at place {wide + 1}; expected 5 or 7 columns "
            "(character, 3 hand cells, code points, then 0 or 2 hand cells)"
        )
    cells = [[grid.cell(gray, r, c) for c in range(columns)] for r in range(len(grid.ys) - 1)]
    header = _is_header(cells[0][0])
    cells = cells[1:] if header else cells
    low = config.rows[0] if min_rows is None else min(min_rows, config.rows[0])
    if not low <= len(cells) <= config.rows[1]:
        raise DataError(path, f"unknown layout: {len(cells)} data rows; expected {low} to {config.rows[1]}")
    rows = tuple(
        TableRow(i, row[0], (*row[1:CODE_POINT_COLUMN], *row[CODE_POINT_COLUMN + 1 :]), row[CODE_POINT_COLUMN])
        for i, row in enumerate(cells)
    )
    log.debug("%s: turned %d, skew %.2f, %d rows x %d hand cells", path.name, turned, skew, len(rows), LAYOUTS[columns])
    return PageTable(path, turned % 360, round(skew, 3), header, rows)


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "no such page (missing file)")
    data = np.fromfile(path, dtype=np.uint8)
    gray = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if gray is None or min(gray.shape) < 64:
        raise DataError(path, "not a readable page scan (corrupt, empty or not an image)")
    return gray


def _binarise(gray: np.ndarray, config: PageConfig) -> np.ndarray:
    """Ink 255, paper 0: a local threshold, so shading and grey paper do not count as ink."""
    return cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY_INV, config.block, config.offset
    )


def _is_turned(ink: np.ndarray) -> bool:
    """True when the long ruling runs up and down: the table's many row lines are the longest lines."""
    horizontal, vertical = line_masks(ink, max(ink.shape) // 12)
    return int(np.count_nonzero(vertical)) > int(np.count_nonzero(horizontal))


def _skew(ink: np.ndarray, config: PageConfig) -> float:
    """The rotation (degrees) that makes the row lines level: the sharpest profile of row sums."""
    scale = min(1.0, config.skew_width / ink.shape[1])
    small = cv2.resize(ink, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape
    best, best_angle = -1.0, 0.0
    for angle in np.arange(-config.max_skew, config.max_skew + 1e-6, config.skew_step):
        rotated = cv2.warpAffine(small, cv2.getRotationMatrix2D((w / 2, h / 2), float(angle), 1.0), (w, h))
        profile = rotated.sum(axis=1, dtype=np.float64)
        score = float(profile @ profile)
        if score > best:
            best, best_angle = score, float(angle)
    return round(best_angle, 3)


def _ink_box(cell: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the dark pixels of a crop, or None for an empty cell."""
    ys, xs = np.nonzero(cell < 128)
    if len(ys) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _is_header(printed: np.ndarray) -> bool:
    """The title row: its first cell holds the word "Character", a long flat line of print."""
    box = _ink_box(printed)
    if box is None:
        return False
    width, height = box[2] - box[0], box[3] - box[1]
    return width > 3 * height and width > 0.4 * printed.shape[1]
