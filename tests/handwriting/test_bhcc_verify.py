"""Placing scanned rows in the row list and verifying their labels: glyph matching, page placement, code points.

Printed characters are drawn with a bundled font the matcher does not use; code points with a
Hershey font; the similarity matrices of the placement tests are made by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from bengaliai.core.fonts import font_path
from bengaliai.handwriting.bhcc_codes import hex_digits, read_code_points
from bengaliai.handwriting.bhcc_verify import (
    AGREE,
    DIFFER,
    MATCH_FONTS,
    UNREAD,
    GlyphMatcher,
    MatchConfig,
    align_page,
    match_rows,
    place_pages,
    settle,
    text_forms,
)

from bhcc_fakes import PRINT_FONT, code_text, put_code


def printed(text: str, size: int = 22) -> np.ndarray:
    """A cell with the text printed in a font the matcher does not use, dark on light."""
    font = ImageFont.truetype(str(font_path(PRINT_FONT)), size, layout_engine=ImageFont.Layout.RAQM)
    image = Image.new("L", (90, 50), 245)
    ImageDraw.Draw(image).text((10, 8), text, font=font, fill=20)
    return np.asarray(image)


def code_cell(text: str) -> np.ndarray:
    cell = np.full((40, 260), 245, np.uint8)
    put_code(cell, text, 10, 28)
    return cell


def test_printed_characters_match_their_own_text_best() -> None:
    assert PRINT_FONT not in MATCH_FONTS
    texts = ["ক", "খ", "গ", "ঘ", "ঙ", "চ", "ট", "ত", "ন", "প", "ম", "র", "ল", "স", "হ", "ক্ষ"]
    sim = GlyphMatcher().similarity([printed(t) for t in texts], texts)
    assert sim.shape == (len(texts), len(texts))
    assert list(np.argmax(sim, axis=1)) == list(range(len(texts)))


def test_the_forms_a_printer_may_use() -> None:
    assert text_forms("ক") == ["ক"]
    assert text_forms("ক্ব") == ["ক্ব", "ক্\u200cব"]  # the hasanta kept visible
    assert text_forms("ি") == ["ি", "\u00a0ি"]  # without the dotted circle
    assert text_forms("ং") == ["ং", "\u00a0ং"]


def block_sim(order: list[int], rows_per_page: list[int], total: int, rng: np.random.Generator) -> np.ndarray:
    """Similarities of scanned rows (pages in ``order`` of their list blocks) to list rows: 0.9 for the
    true row, noise around 0.4 elsewhere."""
    starts = np.concatenate([[0], np.cumsum(rows_per_page)])
    truth = [starts[p] + i for p in order for i in range(rows_per_page[p])]
    sim = rng.uniform(0.3, 0.5, (len(truth), total))
    sim[np.arange(len(truth)), truth] = 0.9
    return sim


def test_pages_scanned_out_of_order_land_in_their_place() -> None:
    rng = np.random.default_rng(0)
    sizes = [12, 12, 12, 5]
    sim = block_sim([0, 2, 1, 3], sizes, 41, rng)  # the second and third page were scanned swapped
    assert place_pages([12, 12, 12, 5], sim) == [0, 24, 12, 36]
    matches = match_rows([12, 12, 12, 5], sim, [str(i) for i in range(41)])
    assert [m.index for m in matches] == [*range(12), *range(24, 36), *range(12, 24), *range(36, 41)]
    assert all(m.verified and m.glyph_best for m in matches)


def test_a_page_that_matches_nothing_stays_unplaced() -> None:
    sim = block_sim([0], [6], 6, np.random.default_rng(1))
    sim = np.vstack([sim, np.full((6, 6), 0.1)])  # a second page of six rows, nothing like the list
    assert place_pages([6, 6], sim) == [0, None]
    matches = match_rows([6, 6], sim, list("abcdef"))
    assert [m.index for m in matches[6:]] == [None] * 6 and not any(m.verified for m in matches[6:])


def test_a_skipped_list_row_resynchronises_within_the_page() -> None:
    block = np.full((5, 12), 0.3)
    for row, col in enumerate([2, 3, 5, 6, 7]):  # the page never printed list row 4
        block[row, col] = 0.9
    assert align_page(block, 2, penalty=0.3) == [2, 3, 5, 6, 7]


def test_verdicts_need_the_best_match_or_agreeing_code_points() -> None:
    texts = ["a", "b", "c", "a"]
    sim = np.array([[0.80, 0.82, 0.1, 0.80]])  # the expected "a" is a near second to "b"
    refused = match_rows([1], np.vstack([sim, np.zeros((0, 4))]), texts, MatchConfig(window=2))[0]
    assert (refused.index, refused.best, refused.glyph_best, refused.verified) == (0, 1, False, False)
    assert settle(refused, AGREE).verified  # the code points break the near tie
    assert not settle(refused, AGREE, MatchConfig(tie=0.01)).verified
    assert not settle(refused, UNREAD).verified
    confirmed = settle(refused.__class__(0, 0, 0, 0, 0.9, 0.9, True), DIFFER)
    assert not confirmed.verified  # code points that read as another row overrule the character


def test_code_points_read_back_against_templates_from_the_other_cells() -> None:
    texts = ["ক", "খ", "গ", "কি", "কা", "খি", "খু", "গা", "গি", "কু", "গু", "খা"]
    cells = [code_cell(t) for t in texts]
    expected = list(texts)
    reads = read_code_points(cells, expected)
    assert reads == [hex_digits(t) for t in texts]
    expected[3] = "কা"  # a row placed wrongly: its print says কি
    reads = read_code_points(cells, expected)
    assert reads[3] == hex_digits("কি") != hex_digits(expected[3])
    blank = read_code_points([np.full((40, 260), 245, np.uint8), *cells], [None, *texts])
    assert blank[0] is None and blank[1:] == [hex_digits(t) for t in texts]


def test_a_symbol_printed_only_once_cannot_be_confirmed() -> None:
    texts = ["ক", "ক", "ঢ"]  # ঢ = 09A2: no other cell shows an A or a 2
    reads = read_code_points([code_cell(t) for t in texts], texts)
    assert reads[:2] == [hex_digits("ক")] * 2 and reads[2] is None


@pytest.mark.parametrize("text", ["ক", "কি", "র্ক্ষ"])
def test_hex_digits(text: str) -> None:
    assert " ".join(f"U+{h}" for h in hex_digits(text)) == code_text(text)
