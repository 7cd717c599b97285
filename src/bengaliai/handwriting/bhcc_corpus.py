"""The Bangla Handwriting Character Corpus read whole: every five-format row placed in the list, labelled, verified.

The five-format scans are the three-format pages with two more writers' columns added by hand (the
first three columns are the same ink, scanned twice), so they are the source of all five writers
and ``Raw Dataset (Three Format)`` is left alone. Pages are read in file-name order (the names are
scan timestamps; two pairs were scanned out of order, which the placement in ``bhcc_verify`` undoes).
A page that cannot be read is logged and skipped, so its rows of the list stay unplaced. The
``Format1..5 Handwriting Dataset`` screenshots are unlabelled and drift out of order: never used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bengaliai.core.errors import DataError
from bengaliai.handwriting.bhcc_codes import hex_digits, read_code_points
from bengaliai.handwriting.bhcc_labels import ROW_LIST, ListRow, read_row_list
from bengaliai.handwriting.bhcc_pages import PageConfig, PageTable, read_page
from bengaliai.handwriting.bhcc_verify import (
    AGREE,
    DIFFER,
    UNREAD,
    GlyphMatcher,
    MatchConfig,
    RowMatch,
    match_rows,
    settle,
)

log = logging.getLogger(__name__)

FIVE_FORMAT_DIR = "Raw Dataset (Five Format)"
THREE_FORMAT_DIR = "Raw Dataset (Three Format)"
PAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VERIFIED, REFUSED, UNPLACED = "verified", "refused", "unplaced"


@dataclass(frozen=True)
class CorpusRow:
    """One scanned row: where it is, which list row it was found to be, and its crops."""

    page: Path
    row: int  # on its page, from 0
    list_row: ListRow | None  # None while its page is unplaced
    match: RowMatch
    printed: np.ndarray
    hand: tuple[np.ndarray, ...]  # writer 1..5 = Format1..Format5

    @property
    def status(self) -> str:
        if self.list_row is None:
            return UNPLACED
        return VERIFIED if self.match.verified else REFUSED


@dataclass
class Corpus:
    """Every scanned row in page order, the row list, the pages read and the pages that were not."""

    rows: list[CorpusRow]
    list_rows: list[ListRow]
    pages: list[PageTable] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line per page that could not be read

    def unseen_list_rows(self) -> list[ListRow]:
        """List rows that no scanned row was placed on."""
        placed = {r.list_row.index for r in self.rows if r.list_row is not None}
        return [r for r in self.list_rows if r.index not in placed]


def page_files(src: Path, folder: str = FIVE_FORMAT_DIR) -> list[Path]:
    """The page scans of one raw folder, in file-name (scan time) order."""
    directory = src / folder
    if not directory.is_dir():
        raise DataError(directory, f"no such folder; give the corpus's root, the folder holding '{FIVE_FORMAT_DIR}'")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in PAGE_SUFFIXES)
    if not files:
        raise DataError(directory, f"no page scans ({', '.join(PAGE_SUFFIXES)})")
    return files


def read_pages(
    files: list[Path], config: PageConfig = PageConfig(), progress: bool = False
) -> tuple[list[PageTable], list[str]]:
    """Every readable page (the last one may hold fewer rows) and a line for each that is not."""
    pages, failed = [], []
    for i, path in enumerate(tqdm(files, desc="pages", unit="page", disable=not progress)):
        try:
            pages.append(read_page(path, config, min_rows=1 if i == len(files) - 1 else None))
        except DataError as error:
            log.warning("skipped: %s", error)
            failed.append(str(error))
    return pages, failed


def read_corpus(src: Path, page_config: PageConfig = PageConfig(), match_config: MatchConfig = MatchConfig(),
                folder: str = FIVE_FORMAT_DIR, progress: bool = False) -> Corpus:
    """All scanned rows of the corpus at ``src`` with their list rows and verdicts."""
    files = page_files(src, folder)
    list_rows = read_row_list(src / ROW_LIST)
    pages, failed = read_pages(files, page_config, progress)
    scanned = [(page, row) for page in pages for row in page.rows]
    texts = [r.text for r in list_rows]
    sim = GlyphMatcher(match_config).similarity([row.printed for _, row in scanned], texts)
    matches = match_rows([len(p.rows) for p in pages], sim, texts, match_config)
    expected = [None if m.index is None else list_rows[m.index].code_points for m in matches]
    reads = read_code_points([row.code_points for _, row in scanned], expected)
    matches = [settle(m, _agreement(read, codes), match_config) for m, read, codes in zip(matches, reads, expected)]
    rows = [
        CorpusRow(page.path, row.row, None if m.index is None else list_rows[m.index], m, row.printed, row.hand)
        for (page, row), m in zip(scanned, matches)
    ]
    corpus = Corpus(rows, list_rows, pages, failed)
    log.info("code points: %d read as the list says, %d otherwise, %d unreadable",
             *(sum(m.codes == c for m in matches) for c in (AGREE, DIFFER, UNREAD)))
    log.info("%s: %d pages read (%d failed), %d rows, %d verified", src, len(pages), len(failed), len(rows),
             sum(r.status == VERIFIED for r in rows))
    return corpus


def _agreement(read: list[str] | None, code_points: str | None) -> str:
    if read is None or code_points is None:
        return UNREAD
    return AGREE if read == hex_digits(code_points) else DIFFER
