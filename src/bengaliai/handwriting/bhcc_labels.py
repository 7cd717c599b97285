"""The Bangla Handwriting Character Corpus's row list (``Bangla Characters.xlsx``) and each row's competition label.

The workbook lists the 739 rows in the order they were printed and written: column A the printed
character, G its code points as printed (``U+0998 U+09BF``; not always the same text as A: the reph
rows lack the hasanta there). It is read with the standard library (an .xlsx is a zip of XML). A row
whose text is one competition grapheme gets its (grapheme_root, vowel_diacritic, consonant_diacritic)
from the label strings of ``competition`` (every triple ``compose`` spells, plus the training set's
other spellings); a bare vowel sign (or other mark with no base) is a sign row; the rest (digits,
conjuncts that are no root, rare letters) are unmapped. Texts are never normalised; only the lookup
compares canonical decompositions, so a precomposed ড় (U+09DC) finds the competition's spelling.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from bengaliai.core.competition import LABEL_STRINGS, N_CLASSES, compose, seen_graphemes
from bengaliai.core.errors import DataError

log = logging.getLogger(__name__)

ROW_LIST = "Bangla Characters.xlsx"
GRAPHEME, SIGN, UNMAPPED = "grapheme", "sign", "unmapped"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_CODE_POINT = re.compile(r"U\+([0-9A-Fa-f]{4,5})")
_BENGALI_ZERO = 0x09E6
_TEXT_COLUMN, _CODE_COLUMN = "A", "G"


@dataclass(frozen=True)
class ListRow:
    """One row of the writing order with its label (``labels`` only for a grapheme row)."""

    index: int  # place in the writing order, from 0
    text: str  # the printed character, as typed (digits as Bengali digits)
    code_points: str  # the text of the printed code-point column
    kind: str  # GRAPHEME, SIGN or UNMAPPED
    labels: tuple[int, int, int] | None = None
    grapheme: str = ""  # the competition's spelling of the labels

    @property
    def vowel_sign(self) -> int | None:
        """The vowel_diacritic class of a bare vowel sign row, if the competition has that sign."""
        strings = LABEL_STRINGS["vowel_diacritic"]
        return strings.index(self.text) if self.kind == SIGN and self.text in strings[1:] else None


def read_row_list(path: Path) -> list[ListRow]:
    """The data rows of the workbook's first sheet (the title row dropped), labelled."""
    cells = _sheet_cells(path)
    rows = []
    for number in sorted(cells)[1:]:
        text = _as_text(cells[number].get(_TEXT_COLUMN, ""))
        if not text:
            continue
        codes = "".join(chr(int(h, 16)) for h in _CODE_POINT.findall(cells[number].get(_CODE_COLUMN, "")))
        rows.append(label_row(len(rows), text, codes))
    if not rows:
        raise DataError(path, "no rows in the first sheet's column A")
    log.info("%s: %d rows, %d graphemes, %d signs", path.name, len(rows),
             sum(r.kind == GRAPHEME for r in rows), sum(r.kind == SIGN for r in rows))
    return rows


def label_row(index: int, text: str, code_points: str = "") -> ListRow:
    """A row of the list with its kind and, for one competition grapheme, its label triple."""
    found = grapheme_index().get(unicodedata.normalize("NFD", text))
    if found is not None:
        return ListRow(index, text, code_points or text, GRAPHEME, found[0], found[1])
    kind = SIGN if all(unicodedata.category(ch).startswith("M") for ch in text) else UNMAPPED
    return ListRow(index, text, code_points or text, kind)


@functools.cache
def grapheme_index() -> dict[str, tuple[tuple[int, int, int], str]]:
    """Canonical decomposition of a grapheme string -> (label triple, competition spelling): the
    training set's spellings first, then every triple as ``compose`` spells it."""
    index: dict[str, tuple[tuple[int, int, int], str]] = {}
    for g in seen_graphemes():
        index.setdefault(unicodedata.normalize("NFD", g.text), (g.labels, g.text))
    for root in range(N_CLASSES["grapheme_root"]):
        for vowel in range(N_CLASSES["vowel_diacritic"]):
            for consonant in range(N_CLASSES["consonant_diacritic"]):
                text = compose(root, vowel, consonant)
                index.setdefault(unicodedata.normalize("NFD", text), ((root, vowel, consonant), text))
    return index


def _as_text(value: str) -> str:
    """A cell's text stripped; a number (the digit rows are typed as numbers) in Bengali digits."""
    value = value.strip()
    if re.fullmatch(r"\d+(\.0+)?", value):
        return "".join(chr(_BENGALI_ZERO + int(d)) for d in value.split(".")[0])
    return value


def _sheet_cells(path: Path) -> dict[int, dict[str, str]]:
    """Row number -> column letter -> text of the workbook's first sheet."""
    if not path.is_file():
        raise DataError(path, f"no such file (the corpus's row list, {ROW_LIST})")
    try:
        with zipfile.ZipFile(path) as book:
            names = set(book.namelist())
            shared = _shared_strings(book.read("xl/sharedStrings.xml")) if "xl/sharedStrings.xml" in names else []
            sheet = ElementTree.fromstring(book.read(_first_sheet(book, names)))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as error:
        raise DataError(path, f"not a readable .xlsx workbook ({error})") from None
    rows: dict[int, dict[str, str]] = {}
    for row in sheet.iter(f"{_MAIN}row"):
        number = int(row.get("r", len(rows) + 1))
        for cell in row.iter(f"{_MAIN}c"):
            column = re.match(r"[A-Z]+", cell.get("r", ""))
            if column is None:
                continue
            rows.setdefault(number, {})[column.group()] = _cell_text(cell, shared)
    return rows


def _first_sheet(book: zipfile.ZipFile, names: set[str]) -> str:
    """The part name of the workbook's first sheet (by the workbook's relationships, else sheet1)."""
    try:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
        first = next(workbook.iter(f"{_MAIN}sheet")).get(f"{_RELS}id")
        target = next(r.get("Target", "") for r in rels if r.get("Id") == first)
        name = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
        if name in names:
            return name
    except (KeyError, StopIteration, ElementTree.ParseError):
        pass
    return "xl/worksheets/sheet1.xml"


def _shared_strings(data: bytes) -> list[str]:
    items = ElementTree.fromstring(data).iter(f"{_MAIN}si")
    return ["".join(t.text or "" for t in item.iter(f"{_MAIN}t")) for item in items]


def _cell_text(cell: ElementTree.Element, shared: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter(f"{_MAIN}t"))
    value = cell.find(f"{_MAIN}v")
    if value is None or value.text is None:
        return ""
    return shared[int(value.text)] if kind == "s" else value.text
