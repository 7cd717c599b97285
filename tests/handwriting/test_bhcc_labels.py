"""The corpus's row list read from a tiny .xlsx written in the test, and each row's competition label."""

from __future__ import annotations

import unicodedata
import zipfile
from pathlib import Path

import pytest

from bengaliai.core.competition import LABEL_STRINGS, compose
from bengaliai.core.errors import DataError
from bengaliai.handwriting.bhcc_labels import GRAPHEME, SIGN, UNMAPPED, label_row, read_row_list

from bhcc_fakes import code_text, write_xlsx

ROOTS = LABEL_STRINGS["grapheme_root"]


def root(text: str) -> int:
    return ROOTS.index(text)


def test_reads_rows_in_order_with_their_code_points(tmp_path: Path) -> None:
    rows = [(0, "U+09E6"), (7, "U+09ED"), (" ক", "U+0995"), ("কি", code_text("কি")), ("ি", "U+09BF"),
            ("র্ক", "U+09B0  U+0995"), ("ক্ব", code_text("ক্ব")), ("\u09a1\u09bc", "U+09A1 U+09BC")]
    listed = read_row_list(write_xlsx(tmp_path / "Bangla Characters.xlsx", rows))
    assert [r.index for r in listed] == list(range(8))
    # the digits were typed as numbers
    assert [r.text for r in listed] == ["০", "৭", "ক", "কি", "ি", "র্ক", "ক্ব", "\u09a1\u09bc"]
    assert [r.kind for r in listed] == [UNMAPPED, UNMAPPED, GRAPHEME, GRAPHEME, SIGN, GRAPHEME, UNMAPPED, GRAPHEME]
    assert listed[3].code_points == "কি"
    assert listed[5].code_points == "রক"  # the printed code points, even where they lack the hasanta
    assert listed[2].labels == (root("ক"), 0, 0) and listed[3].labels == (root("ক"), 2, 0)
    assert listed[5].labels == (root("ক"), 0, 2)  # reph
    # ড + nukta finds the competition's precomposed ড় (U+09DC), and keeps the list's own spelling as its text
    assert listed[7].labels == (ROOTS.index("\u09dc"), 0, 0) and listed[7].grapheme == "\u09dc"


@pytest.mark.parametrize(
    ("text", "labels"),
    [("কি", ("ক", 2, 0)), ("ক্র", ("ক", 0, 5)), ("ন্য", ("ন", 0, 4)), ("র্কা", ("ক", 1, 2)), ("স্তু", ("স্ত", 4, 0)),
     ("কঁ", ("ক", 0, 1)), ("ক্ষ", ("ক্ষ", 0, 0)), ("ং", ("ং", 0, 0))],
)
def test_a_grapheme_row_gets_the_triple_compose_spells_it_with(text: str, labels: tuple[str, int, int]) -> None:
    row = label_row(0, text)
    assert row.kind == GRAPHEME and row.labels == (root(labels[0]), labels[1], labels[2])
    assert unicodedata.normalize("NFD", compose(*row.labels)) == unicodedata.normalize("NFD", text)


def test_signs_and_unmapped_rows() -> None:
    sign = label_row(0, "ি")
    assert (sign.kind, sign.labels, sign.vowel_sign) == (SIGN, None, 2)
    assert label_row(0, "ৄ").kind == SIGN and label_row(0, "ৄ").vowel_sign is None  # no competition class
    assert label_row(0, "্").kind == SIGN
    for text in ("৫", "ক্ব", "ঀ", "খ্ল"):
        row = label_row(0, text)
        assert (row.kind, row.labels, row.vowel_sign) == (UNMAPPED, None, None)


def test_bad_workbooks_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "Bangla Characters.xlsx"
    with pytest.raises(DataError, match="no such file"):
        read_row_list(missing)
    missing.write_bytes(b"a csv, not a workbook")
    with pytest.raises(DataError, match="not a readable .xlsx workbook"):
        read_row_list(missing)
    with zipfile.ZipFile(empty := tmp_path / "empty.xlsx", "w") as book:
        main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
        book.writestr("xl/worksheets/sheet1.xml", f'<worksheet xmlns="{main}"/>')
    with pytest.raises(DataError) as error:
        read_row_list(empty)
    assert str(error.value).startswith(str(empty)) and "no rows" in str(error.value)
