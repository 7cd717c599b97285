"""Tiny stand-ins for the Bangla Handwriting Character Corpus, drawn here: the real scans are never used in tests.

``draw_page`` rules a table like the corpus's (printed character, 3 hand cells, code points, and
optionally 2 columns ruled crookedly by hand), prints the characters with a bundled font that the
matcher does not use, the code points with a Hershey font (no bundled font has Latin letters), and
scribbles fake handwriting in the hand cells. ``write_xlsx`` writes a minimal row list workbook.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bengaliai.core.fonts import font_path

PRINT_FONT = "hind-siliguri-300.ttf"  # not among bhcc_verify.MATCH_FONTS: the printer's font differs
PITCH = 44
PRINTED = (52, 84, 84, 84, 210)  # column widths: character, Format1-3, code points
ADDED = (80, 80)  # Format4-5, ruled by hand
TOP, LEFT = 70, 60


def code_text(text: str) -> str:
    return " ".join(f"U+{ord(ch):04X}" for ch in text)


def put_code(image: np.ndarray, text: str, x: int, y: int) -> None:
    """The code points of a text at (x, baseline y), glyph by glyph, so that letters stand apart as in print."""
    for word in code_text(text).split():
        for ch in word:
            cv2.putText(image, ch, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 20, 1, cv2.LINE_AA)
            x += 11
        x += 9


def draw_page(texts: list[str], hand_columns: int = 5, header: bool = False, seed: int = 0,
              size: tuple[int, int] = (700, 1000), font_name: str = PRINT_FONT) -> np.ndarray:
    """A uint8 page scan (dark ink on light paper) of one row per text, printed in ``font_name``."""
    rng = np.random.default_rng(seed)
    page = np.full(size, 246, np.uint8)
    widths = PRINTED + (ADDED if hand_columns == 5 else ADDED[: max(hand_columns - 3, 0)])
    xs = np.concatenate([[LEFT], LEFT + np.cumsum(widths)]).astype(int)
    rows = len(texts) + header
    ys = TOP + PITCH * np.arange(rows + 1)
    printed_right = int(xs[len(PRINTED)])
    for y in ys:
        cv2.line(page, (int(xs[0]), int(y)), (printed_right, int(y)), 20, 2)
        # the hand-ruled continuation: a little off the printed line and not quite level
        cv2.line(page, (printed_right, int(y) + 1), (int(xs[-1]) + 2, int(y) + int(rng.integers(-2, 3))), 35, 2)
    for i, x in enumerate(xs):
        drift = 0 if i <= len(PRINTED) else int(rng.integers(-3, 4))
        cv2.line(page, (int(x), int(ys[0])), (int(x) + drift, int(ys[-1])), 20 if i <= len(PRINTED) else 35, 2)
    image = Image.fromarray(page)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(font_path(font_name)), 20, layout_engine=ImageFont.Layout.RAQM)
    if header:
        draw.text((int(xs[0]) + 3, int(ys[0]) + 24), "Character", font=ImageFont.load_default(size=10), fill=20)
    for r, text in enumerate(texts):
        top = int(ys[r + header])
        draw.text((int(xs[0]) + 8, top + 10), text, font=font, fill=15)
    page = np.asarray(image).copy()
    for r, text in enumerate(texts):
        top = int(ys[r + header])
        put_code(page, text, int(xs[4]) + 12, top + 34)
        for c in [1, 2, 3, *range(5, len(widths))]:
            scribble(page, int(xs[c]), top, int(widths[c]), rng)
    return page


def scribble(page: np.ndarray, left: int, top: int, width: int, rng: np.random.Generator) -> None:
    """Fake handwriting inside one cell: a head line, a stem and a loop."""
    cx, cy = left + width // 2 + int(rng.integers(-6, 7)), top + PITCH // 2 + int(rng.integers(-3, 4))
    cv2.line(page, (cx - 16, cy - 11), (cx + 16, cy - 11 + int(rng.integers(-2, 3))), 30, 2)
    cv2.line(page, (cx + 10, cy - 11), (cx + 10, cy + 12), 30, 2)
    cv2.ellipse(page, (cx - 4, cy + 3), (7, 6), 0, 0, int(rng.integers(250, 360)), 30, 2)


def turn(page: np.ndarray, skew: float = 0.0, code: int | None = None) -> np.ndarray:
    """The page skewed by ``skew`` degrees (white corners), then turned by a cv2.ROTATE_* code."""
    h, w = page.shape
    if skew:
        page = cv2.warpAffine(page, cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0), (w, h), borderValue=246)
    return page if code is None else cv2.rotate(page, code)


def write_page(path: Path, page: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), page)
    return path


def write_xlsx(path: Path, rows: list[tuple[object, str]]) -> Path:
    """A workbook of a title row and (character, code points) rows: numbers as numbers, the first
    text row as an inline string, the others shared."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    shared: list[str] = []
    cells = ['<row r="1"><c r="A1" t="inlineStr"><is><t>Character</t></is></c></row>']
    for i, (character, codes) in enumerate(rows, start=2):
        if isinstance(character, int):
            a = f'<c r="A{i}"><v>{character}</v></c>'
        elif i == 2:
            a = f'<c r="A{i}" t="inlineStr"><is><t xml:space="preserve">{escape(character)}</t></is></c>'
        else:
            shared.append(str(character))
            a = f'<c r="A{i}" t="s"><v>{len(shared) - 1}</v></c>'
        shared.append(codes)
        cells.append(f'<row r="{i}">{a}<c r="G{i}" t="s"><v>{len(shared) - 1}</v></c></row>')
    strings = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in shared)
    with zipfile.ZipFile(path, "w") as book:
        rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
        sheets = '<sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets>'
        book.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rels}">{sheets}</workbook>')
        book.writestr("xl/_rels/workbook.xml.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/'
                      '2006/relationships"><Relationship Id="rId1" Target="worksheets/sheet1.xml"/></Relationships>')
        book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{strings}</sst>')
        sheet = f'<worksheet xmlns="{main}"><sheetData>{"".join(cells)}</sheetData></worksheet>'
        book.writestr("xl/worksheets/sheet1.xml", sheet)
    return path
