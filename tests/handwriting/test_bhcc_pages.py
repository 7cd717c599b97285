"""Reading a corpus page: the table found upright or turned, its rows cropped clean, and clear errors.

The pages are drawn in the test (``bhcc_fakes``): a ruled table with printed characters, Hershey code
points and scribbled hand cells, two of its columns ruled crookedly by hand.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bengaliai.core.errors import DataError
from bengaliai.handwriting.bhcc_pages import read_page

from bhcc_fakes import PITCH, TOP, draw_page, turn, write_page

TEXTS = ["ক", "খ", "গ", "ঘ", "কি", "কা", "কু", "কে", "চ", "ছ", "জ", "ঝ"]


def ink(cell: np.ndarray) -> int:
    return int(np.count_nonzero(cell < 128))


def border_ink(cell: np.ndarray, band: int = 2) -> int:
    dark = cell < 128
    return int(dark[:band].sum() + dark[-band:].sum() + dark[:, :band].sum() + dark[:, -band:].sum())


@pytest.fixture(scope="module")
def upright(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_page(tmp_path_factory.mktemp("bhcc") / "page.png", draw_page(TEXTS))


def test_five_format_page_gives_each_row_its_cells(upright: Path) -> None:
    page = read_page(upright)
    assert (page.turned, page.header, len(page.rows), page.hand_columns) == (0, False, 12, 5)
    assert abs(page.skew) < 0.3
    assert [row.row for row in page.rows] == list(range(12))
    for row in page.rows:
        assert ink(row.printed) > 20 and ink(row.code_points) > 40
        for cell in row.hand:  # a scribble in every hand cell, and no ruling left along the borders
            assert ink(cell) > 60 and border_ink(cell) == 0
        assert row.printed.shape[1] < row.hand[0].shape[1] < row.code_points.shape[1]


@pytest.mark.parametrize(
    ("code", "skew", "turned"),
    [(cv2.ROTATE_90_CLOCKWISE, 1.5, 90), (cv2.ROTATE_90_COUNTERCLOCKWISE, -2.0, 270), (cv2.ROTATE_180, 1.0, 180),
     (None, -2.0, 0)],
)
def test_a_turned_or_skewed_scan_reads_like_the_upright_one(
    tmp_path: Path, upright: Path, code: int | None, skew: float, turned: int
) -> None:
    path = write_page(tmp_path / "turned.png", turn(cv2.imread(str(upright), cv2.IMREAD_GRAYSCALE), skew, code))
    page, reference = read_page(path), read_page(upright)
    assert (page.turned, len(page.rows), page.hand_columns) == (turned, 12, 5)
    assert page.skew == pytest.approx(-skew, abs=0.25)
    for row, ref in zip(page.rows, reference.rows):  # the same row in the same place: as much ink
        assert ink(row.printed) == pytest.approx(ink(ref.printed), rel=0.35)
        assert [ink(c) for c in row.hand] == pytest.approx([ink(c) for c in ref.hand], rel=0.35)


def test_three_format_page_and_the_title_row(tmp_path: Path) -> None:
    three = read_page(write_page(tmp_path / "three.jpg", draw_page(TEXTS, hand_columns=3)))
    assert (len(three.rows), three.hand_columns) == (12, 3)
    first = read_page(write_page(tmp_path / "first.png", draw_page(TEXTS[:11], header=True)))
    assert first.header and len(first.rows) == 11 and first.rows[0].row == 0


def test_a_page_cut_off_by_the_scanner_keeps_its_edge_rows(tmp_path: Path) -> None:
    cut = draw_page(TEXTS)[TOP + 10 : TOP + PITCH * 12 - 8]  # the top and bottom row lines are off the scan
    table = read_page(write_page(tmp_path / "cut.png", cut))
    assert len(table.rows) == 12 and all(ink(c) > 30 for c in table.rows[0].hand)


def test_the_last_page_may_hold_fewer_rows(tmp_path: Path) -> None:
    path = write_page(tmp_path / "last.png", draw_page(TEXTS[:4]))
    with pytest.raises(DataError, match="unknown layout: 4 data rows; expected 11 to 12"):
        read_page(path)
    assert len(read_page(path, min_rows=1).rows) == 4


def one_line_naming(error: pytest.ExceptionInfo[DataError], path: Path) -> str:
    message = str(error.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_bad_pages_are_one_line_errors_naming_the_page(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    with pytest.raises(DataError) as error:
        read_page(missing)
    assert "no such page" in one_line_naming(error, missing)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError) as error:
        read_page(garbage)
    assert "not a readable page scan" in one_line_naming(error, garbage)
    blank = write_page(tmp_path / "blank.png", np.full((600, 900), 246, np.uint8))
    with pytest.raises(DataError) as error:
        read_page(blank)
    assert "no table found" in one_line_naming(error, blank)


def test_a_table_of_another_layout_is_refused(tmp_path: Path) -> None:
    two_added = draw_page(TEXTS, hand_columns=4)  # one column ruled by hand: 6 columns
    path = write_page(tmp_path / "six.png", two_added)
    with pytest.raises(DataError) as error:
        read_page(path)
    assert "unknown layout: 6 columns" in one_line_naming(error, path)
    many = write_page(tmp_path / "many.png", draw_page(TEXTS + ["ট", "ঠ"], size=(800, 1000)))
    with pytest.raises(DataError, match="14 data rows; expected 11 to 12"):
        read_page(many)
