"""Reading the code points printed in the corpus's rows (``U+0998 U+09BF``): a second check of each row's place.

No bundled font has Latin letters, so the hex digits are read against templates learnt from the
corpus itself: every glyph of a row is labelled by the code points its place in the list says it
should show, a symbol's template is the mean of its glyphs over all other rows, and a row reads
back as the nearest template of each of its glyphs. A misplaced row (or a typo in the print) then
reads as something else, while two vowel signs that look alike in the printed character (ু, ূ) are
told apart by their code points (09C1, 09C2). The words of a cell are split where the gap between
ink columns is wider than about half the text height; each word must be six glyphs, ``U``, ``+``
and four hex digits, or the row is unreadable.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import cv2
import numpy as np

log = logging.getLogger(__name__)

HEX = "0123456789ABCDEF"
_GLYPHS_PER_WORD = 6  # U + and four hex digits
_SIDE = 20
_MIN_SPECK = 8
_INK = 170  # print is crisp: a high threshold keeps the thin bottom of a U joined


def code_words(cell: np.ndarray) -> list[list[np.ndarray]]:
    """The printed words of a cell, each a list of glyph masks: ink columns split by blank ones,
    and words where a blank is clearly wider than the usual one between letters."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats((cell < _INK).astype(np.uint8), connectivity=8)
    ink = np.isin(labels, np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= _MIN_SPECK) + 1)
    band = _text_line(ink)
    if band is None:
        return []
    ink = ink[band[0] : band[1]]
    columns = np.concatenate([[False], ink.any(axis=0), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(columns))
    runs = _split_wide(list(zip(edges[::2], edges[1::2])), ink)
    if not runs:
        return []
    gaps = np.array([b[0] - a[1] for a, b in itertools.pairwise(runs)])
    usual = float(np.median(gaps)) if len(gaps) else 0.0
    words: list[list[np.ndarray]] = [[ink[:, runs[0][0] : runs[0][1]]]]
    for gap, (start, stop) in zip(gaps, runs[1:]):
        if gap > max(2 * usual, usual + 3):
            words.append([])
        words[-1].append(ink[:, start:stop])
    return words


def _text_line(ink: np.ndarray) -> tuple[int, int] | None:
    """The rows of the band holding the most ink (the printed line, not a remnant of the ruling)."""
    rows = np.concatenate([[False], ink.any(axis=1), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(rows))
    bands = list(zip(edges[::2], edges[1::2]))
    if not bands:
        return None
    return max(bands, key=lambda b: int(ink[b[0] : b[1]].sum()))


def _split_wide(runs: list[tuple[int, int]], ink: np.ndarray) -> list[tuple[int, int]]:
    """Two letters printed touching (AA) split at the faintest column of their middle."""
    if len(runs) < 3:
        return runs
    usual = float(np.median([b - a for a, b in runs]))
    out = []
    for a, b in runs:
        if b - a > 1.6 * usual:
            third = (b - a) // 3
            cut = a + third + int(np.argmin(ink[:, a + third : b - third].sum(axis=0)))
            out += [(a, cut), (cut + 1, b)]
        else:
            out.append((a, b))
    return out


def glyph_vector(mask: np.ndarray) -> np.ndarray:
    """A glyph at the scale of its text line (``mask`` is the line's full height), in a small
    square, blurred, as a unit vector: width and height stay, so B is not an 8."""
    canvas = np.zeros((_SIDE, _SIDE), np.float32)
    rows, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows):
        ink = mask[:, xs.min() : xs.max() + 1].astype(np.float32)
        scale = _SIDE / mask.shape[0]
        h, w = _SIDE, min(_SIDE, max(1, round(ink.shape[1] * scale)))
        x0 = (_SIDE - w) // 2
        canvas[:, x0 : x0 + w] = cv2.resize(ink, (w, h), interpolation=cv2.INTER_AREA)
    vector = cv2.GaussianBlur(canvas, (0, 0), 1.0).ravel()
    vector -= vector.mean()
    return vector / (np.linalg.norm(vector) + 1e-9)


def hex_digits(code_points: str) -> list[str]:
    """The four hex digits printed for each code point, e.g. 'কি' -> ['0995', '09BF']."""
    return [f"{ord(ch):04X}" for ch in code_points]


def read_code_points(cells: Sequence[np.ndarray], expected: Sequence[str | None]) -> list[list[str] | None]:
    """Each cell's code points as read against templates learnt from the other cells (``expected``:
    the code points each cell should show, None where unknown); None for an unreadable cell."""
    digits: list[list[np.ndarray] | None] = []
    for cell in cells:
        words = code_words(cell)
        glyphs = [g for w in words for g in w]
        if not all(len(w) == _GLYPHS_PER_WORD for w in words) and len(glyphs) % _GLYPHS_PER_WORD == 0:
            # spaces no wider than the gaps between letters: every word is six glyphs anyway
            words = [glyphs[i : i + _GLYPHS_PER_WORD] for i in range(0, len(glyphs), _GLYPHS_PER_WORD)]
        ok = bool(words) and all(len(w) == _GLYPHS_PER_WORD for w in words)
        digits.append([glyph_vector(g) for w in words for g in w[2:]] if ok else None)
    sums = np.zeros((len(HEX), _SIDE * _SIDE), np.float32)
    counts = np.zeros(len(HEX), dtype=int)
    labels: list[list[int] | None] = []
    for vectors, codes in zip(digits, expected):
        symbols = "".join(hex_digits(codes)) if codes is not None else ""
        if vectors is None or len(symbols) != len(vectors) or any(s not in HEX for s in symbols):
            labels.append(None)
            continue
        labels.append([HEX.index(s) for s in symbols])
        for v, k in zip(vectors, labels[-1]):
            sums[k] += v
            counts[k] += 1
    reads: list[list[str] | None] = []
    for vectors, own in zip(digits, labels):
        if vectors is None:
            reads.append(None)
            continue
        symbols = [_nearest(v, sums, counts, k) for v, k in zip(vectors, own or [None] * len(vectors))]
        text = "".join(symbols)
        reads.append(None if "?" in text else [text[i : i + 4] for i in range(0, len(text), 4)])
    log.debug("code points: %d of %d cells readable", sum(r is not None for r in reads), len(reads))
    return reads


def _nearest(vector: np.ndarray, sums: np.ndarray, counts: np.ndarray, own: int | None) -> str:
    """The symbol whose template (mean over the other cells' glyphs) is closest; '?' when the symbol
    the glyph should be has no other example to compare with (nor, unlabelled, any symbol)."""
    sums, counts = sums.copy(), counts.copy()
    if own is not None:
        sums[own] -= vector
        counts[own] -= 1
    learnt = np.flatnonzero(counts > 0)
    if len(learnt) == 0 or (own is not None and counts[own] == 0):
        return "?"
    templates = sums[learnt] / counts[learnt, None]
    templates /= np.linalg.norm(templates, axis=1, keepdims=True) + 1e-9
    return HEX[int(learnt[int(np.argmax(templates @ vector))])]
