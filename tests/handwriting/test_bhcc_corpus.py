"""A whole (tiny, drawn) corpus read: pages out of scan order placed, every row verified, a bad page skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from bengaliai.core.errors import DataError
from bengaliai.handwriting.bhcc_corpus import FIVE_FORMAT_DIR, UNPLACED, VERIFIED, read_corpus
from bengaliai.handwriting.bhcc_labels import GRAPHEME, ROW_LIST
from bengaliai.handwriting.bhcc_verify import AGREE, UNREAD

from bhcc_fakes import code_text, draw_page, write_page, write_xlsx

TEXTS = list("কখগঘঙচছজঝঞটঠডঢণতথদধনপফবভমযরল")  # 28 rows: pages of 12, 12 and 4
# Printed in a font the matcher knows: this tests the reading, placing and checking, not the font
# matching (test_bhcc_verify prints in another font).
FONT = "tiro-bangla-400.ttf"


def make_corpus(root: Path, bad_page: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_xlsx(root / ROW_LIST, [(t, code_text(t)) for t in TEXTS])
    pages = root / FIVE_FORMAT_DIR
    write_page(pages / "img_01.png", draw_page(TEXTS[12:24], seed=1, font_name=FONT))  # scanned before the first page
    write_page(pages / "img_02.png", draw_page(TEXTS[:12], seed=2, font_name=FONT))
    write_page(pages / "img_03.png", draw_page(TEXTS[24:], seed=3, font_name=FONT))
    if bad_page:
        (pages / "img_02b.jpg").write_bytes(b"truncated")
    return root


def test_reads_places_and_verifies_every_row(tmp_path: Path) -> None:
    corpus = read_corpus(make_corpus(tmp_path))
    assert len(corpus.pages) == 3 and corpus.failed == []
    assert [r.list_row.text for r in corpus.rows] == TEXTS[12:24] + TEXTS[:12] + TEXTS[24:]
    assert [r.row for r in corpus.rows[:13]] == list(range(12)) + [0]
    assert all(r.status == VERIFIED and r.list_row.kind == GRAPHEME for r in corpus.rows)
    # ড 09A1, ণ 09A3 and ত 09A4 are the only cells with a 1, a 3, a 4: nothing to compare them with
    assert [r.list_row.text for r in corpus.rows if r.match.codes == UNREAD] == ["ড", "ণ", "ত"]
    assert all(r.match.codes in (AGREE, UNREAD) for r in corpus.rows)
    assert all(len(r.hand) == 5 for r in corpus.rows) and corpus.unseen_list_rows() == []
    assert corpus.rows[0].page.name == "img_01.png"


def test_an_unreadable_page_is_skipped_and_reported(tmp_path: Path) -> None:
    corpus = read_corpus(make_corpus(tmp_path, bad_page=True))
    assert len(corpus.failed) == 1
    assert "img_02b.jpg" in corpus.failed[0] and "not a readable page scan" in corpus.failed[0]
    assert sum(r.status == VERIFIED for r in corpus.rows) == len(TEXTS)
    assert not any(r.status == UNPLACED for r in corpus.rows)


def test_missing_parts_of_the_corpus(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Raw Dataset \\(Five Format\\)"):
        read_corpus(make_corpus(tmp_path / "a").parent / "elsewhere")
    root = make_corpus(tmp_path / "b")
    (root / ROW_LIST).unlink()
    with pytest.raises(DataError, match="no such file"):
        read_corpus(root)
    empty = tmp_path / "c"
    (empty / FIVE_FORMAT_DIR).mkdir(parents=True)
    write_xlsx(empty / ROW_LIST, [("ক", "U+0995")])
    with pytest.raises(DataError, match="no page scans"):
        read_corpus(empty)
