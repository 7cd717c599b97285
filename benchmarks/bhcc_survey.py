"""Survey of the Bangla Handwriting Character Corpus as the bhcc_* library reads it: counts, timing, a contact sheet.

Usage: python benchmarks/bhcc_survey.py SRC --sheet /tmp/bhcc_sheet.png [--n 40] [--seed 0] [--three 8]
SRC is the corpus's root (the folder holding ``Raw Dataset (Five Format)`` and ``Bangla
Characters.xlsx``; never shipped: the user fetches it). Prints pages read, rows found, rows verified /
refused / unplaced by kind (grapheme, sign, unmapped), the code-point check, per-writer counts and
the time. The sheet shows, one line per row, the printed character, the five writers' cells and the
label: a random sample of verified rows, then every refused one (red label). ``--three N`` also reads
the first N three-format pages and scores each of their hand cells against the five-format cell of
the same list row and writer, and against the other writers of that row: the claim that the
five-format pages hold the three-format ink is true when the same-writer score is near 1 and far above
the others.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bengaliai.core.fonts import font_path
from bengaliai.handwriting.bhcc_corpus import (
    THREE_FORMAT_DIR,
    VERIFIED,
    Corpus,
    CorpusRow,
    page_files,
    read_corpus,
    read_pages,
)
from bengaliai.handwriting.bhcc_labels import GRAPHEME, SIGN, UNMAPPED
from bengaliai.handwriting.bhcc_verify import GlyphMatcher, MatchConfig, match_rows

log = logging.getLogger(__name__)
_CELL_H, _CELL_W, _LABEL_W, _GAP = 64, 128, 300, 3


def has_ink(cell: np.ndarray) -> bool:
    return int(np.count_nonzero(cell < 128)) >= 30


def report(corpus: Corpus, seconds: float) -> None:
    rows = corpus.rows
    print(f"pages read: {len(corpus.pages)}, failed: {len(corpus.failed)}")
    for line in corpus.failed:
        print(f"  failed: {line}")
    unseen = len(corpus.unseen_list_rows())
    print(f"rows found: {len(rows)} (list rows: {len(corpus.list_rows)}, never placed: {unseen})")
    skews = [p.skew for p in corpus.pages]
    turns = dict(Counter(p.turned for p in corpus.pages))
    print(f"page turns: {turns}, skew (deg) {min(skews):.1f} to {max(skews):.1f}, "
          f"title rows: {sum(p.header for p in corpus.pages)}")
    status = Counter(r.status for r in rows)
    print(f"rows: {dict(status)}")
    for kind in (GRAPHEME, SIGN, UNMAPPED):
        print(f"  {kind:9s}: {dict(Counter(r.status for r in rows if r.list_row and r.list_row.kind == kind))}")
    print(f"code points vs list: {dict(Counter(r.match.codes for r in rows))}")
    print(f"verified by the character alone: {sum(r.match.glyph_best for r in rows)}, "
          f"with the code points' help: {sum(r.match.verified and not r.match.glyph_best for r in rows)}")
    good = [r for r in rows if r.status == VERIFIED and r.list_row.kind in (GRAPHEME, SIGN)]
    writers = max((len(r.hand) for r in rows), default=0)
    for w in range(writers):
        graphemes = sum(has_ink(r.hand[w]) for r in good if r.list_row.kind == GRAPHEME)
        signs = sum(has_ink(r.hand[w]) for r in good if r.list_row.kind == SIGN)
        print(f"  writer {w + 1}: {graphemes} grapheme cells, {signs} sign cells with ink")
    triples = {r.list_row.labels for r in good if r.list_row.kind == GRAPHEME}
    print(f"distinct label triples verified: {len(triples)}")
    print(f"time: {seconds:.1f} s")


def fit(cell: np.ndarray, height: int, width: int) -> np.ndarray:
    scale = min(height / cell.shape[0], width / cell.shape[1])
    small = cv2.resize(cell, (max(1, int(cell.shape[1] * scale)), max(1, int(cell.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    out = np.full((height, width), 255, np.uint8)
    out[: small.shape[0], : small.shape[1]] = small
    return out


def sheet_line(row: CorpusRow, font: ImageFont.FreeTypeFont) -> np.ndarray:
    cells = [fit(row.printed, _CELL_H, _CELL_W // 2)] + [fit(c, _CELL_H, _CELL_W) for c in row.hand]
    image = Image.new("RGB", (_LABEL_W, _CELL_H), "white")
    lr = row.list_row
    latin = ImageFont.load_default(size=13)
    colour = (0, 110, 0) if row.status == VERIFIED else (200, 0, 0)
    draw = ImageDraw.Draw(image)
    draw.text((4, 2), "?" if lr is None else lr.text, font=font, fill=colour)
    label = "unplaced" if lr is None else f"{lr.kind} {lr.labels or ''}"
    draw.text((70, 10), label, font=latin, fill=colour)
    best = "" if row.match.best is None or row.match.best == row.match.index else f" best #{row.match.best}"
    where = f"{row.page.stem[-8:]} r{row.row} #{row.match.index} codes {row.match.codes}{best}"
    draw.text((4, 44), where, font=latin, fill=(0, 0, 0))
    gap = np.full((_CELL_H, _GAP, 3), 160, np.uint8)
    parts = [np.repeat(c[:, :, None], 3, axis=2) for c in cells] + [np.asarray(image)]
    return np.hstack([p for c in parts for p in (c, gap)])


def write_sheet(corpus: Corpus, path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    good = [r for r in corpus.rows if r.status == VERIFIED]
    picked = [good[i] for i in sorted(rng.choice(len(good), size=min(n, len(good)), replace=False))]
    picked += [r for r in corpus.rows if r.status != VERIFIED]
    font = ImageFont.truetype(str(font_path("noto-sans-bengali-200.ttf")), 26, layout_engine=ImageFont.Layout.RAQM)
    lines = [sheet_line(r, font) for r in picked]
    bar = np.full((_GAP, lines[0].shape[1], 3), 160, np.uint8)
    sheet = np.vstack([p for line in lines for p in (line, bar)])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"contact sheet: {path} ({len(good[:n])} verified, {len(picked) - min(n, len(good))} not verified)")


def ink_vector(cell: np.ndarray, side: int = 64) -> np.ndarray | None:
    ys, xs = np.nonzero(cell < 128)
    if len(ys) < 30:
        return None
    ink = (cell[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] < 128).astype(np.float32)
    vector = cv2.GaussianBlur(cv2.resize(ink, (side, side), interpolation=cv2.INTER_AREA), (0, 0), 1.5).ravel()
    vector -= vector.mean()
    return vector / (np.linalg.norm(vector) + 1e-9)


def compare_three(src: Path, corpus: Corpus, pages: int) -> None:
    """Same-writer and other-writer similarity of three-format cells to the five-format ones."""
    three, failed = read_pages(page_files(src, THREE_FORMAT_DIR)[:pages])
    texts = [r.text for r in corpus.list_rows]
    scanned = [row for page in three for row in page.rows]
    sim = GlyphMatcher().similarity([row.printed for row in scanned], texts)
    matches = match_rows([len(p.rows) for p in three], sim, texts, MatchConfig(min_similarity=0.5))
    five = {r.match.index: r for r in corpus.rows if r.match.index is not None}
    same, other, best = [], [], 0
    for row, m in zip(scanned, matches):
        if m.index is None or m.index not in five:
            continue
        twins = [ink_vector(c) for c in five[m.index].hand]
        for w, cell in enumerate(row.hand):
            v = ink_vector(cell)
            if v is None:
                continue
            scores = [float(v @ t) if t is not None else np.nan for t in twins]
            same.append(scores[w])
            other += [s for i, s in enumerate(scores) if i != w]
            best += int(np.nanargmax(scores) == w)
    print(f"three-format: {len(three)} pages read ({len(failed)} failed), {len(same)} hand cells placed, "
          f"{best} of them most like the five-format cell of the same writer")
    if same:
        print(f"  same writer, same row : median {np.nanmedian(same):.3f}, 10th pct {np.nanpercentile(same, 10):.3f}")
        print(f"  other writers, same row: median {np.nanmedian(other):.3f}, "
              f"90th pct {np.nanpercentile(other, 90):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="the corpus's root folder")
    parser.add_argument("--sheet", type=Path, required=True, help="contact sheet PNG to write")
    parser.add_argument("--n", type=int, default=40, help="verified rows on the sheet (every refused row is added)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--three", type=int, default=0, help="three-format pages to compare with the five-format ink")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    corpus = read_corpus(args.src, progress=True)
    report(corpus, time.perf_counter() - start)
    write_sheet(corpus, args.sheet, args.n, args.seed)
    if args.three:
        compare_three(args.src, corpus, args.three)


if __name__ == "__main__":
    main()
