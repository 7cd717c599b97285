"""Facts of the bengaliai-cv19 competition that every stage shares.

Image shape, the three components and their class counts, the label strings, the graphemes of
the real training set, class counts, file names and the metric weights live here and nowhere
else. Grapheme strings are never Unicode-normalised: the competition stores them as typed, and
NFC/NFD would change some of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bengaliai import _tables

COMPETITION = "bengaliai-cv19"

HEIGHT = 137
WIDTH = 236
N_PIXELS = HEIGHT * WIDTH
PIXEL_COLUMNS: tuple[str, ...] = tuple(str(i) for i in range(N_PIXELS))

# Model heads, label columns of train.csv and metric weights follow this order.
COMPONENTS: tuple[str, ...] = ("grapheme_root", "vowel_diacritic", "consonant_diacritic")
N_CLASSES: dict[str, int] = {"grapheme_root": 168, "vowel_diacritic": 11, "consonant_diacritic": 7}
METRIC_WEIGHTS: tuple[float, ...] = (2.0, 1.0, 1.0)
# test.csv lists the three rows of each image in this order (alphabetical, not COMPONENTS).
TEST_COMPONENT_ORDER: tuple[str, ...] = ("consonant_diacritic", "grapheme_root", "vowel_diacritic")

TRAIN_CSV = "train.csv"
TEST_CSV = "test.csv"
CLASS_MAP_CSV = "class_map.csv"
SAMPLE_SUBMISSION_CSV = "sample_submission.csv"
N_IMAGE_FILES = 4
TRAIN_COLUMNS: tuple[str, ...] = ("image_id", *COMPONENTS, "grapheme")
TEST_COLUMNS: tuple[str, ...] = ("row_id", "image_id", "component")


def image_parquet_name(split: str, index: int) -> str:
    """File name of one image file of a split, e.g. ``train_image_data_0.parquet``."""
    return f"{split}_image_data_{index}.parquet"


LABEL_STRINGS: dict[str, tuple[str, ...]] = {
    "grapheme_root": _tables.ROOT_STRINGS,
    "vowel_diacritic": _tables.VOWEL_STRINGS,
    "consonant_diacritic": _tables.CONSONANT_STRINGS,
}
CLASS_COUNTS: dict[str, tuple[int, ...]] = {
    "grapheme_root": _tables.ROOT_COUNTS,
    "vowel_diacritic": _tables.VOWEL_COUNTS,
    "consonant_diacritic": _tables.CONSONANT_COUNTS,
}

_REPH = "র্"
_YA_PHALA = "্য"
_CANDRABINDU = "ঁ"
_ZWJ = "\u200d"
_RA = "র"
# A bare anusvara or visarga is drawn with a dotted circle unless something precedes it.
_BARE_SIGNS = ("ং", "ঃ")
_NO_BREAK_SPACE = "\u00a0"


@dataclass(frozen=True)
class Grapheme:
    """A grapheme string with its label triple (root, vowel diacritic, consonant diacritic)."""

    text: str
    grapheme_root: int
    vowel_diacritic: int
    consonant_diacritic: int

    @property
    def labels(self) -> tuple[int, int, int]:
        return (self.grapheme_root, self.vowel_diacritic, self.consonant_diacritic)


def compose(grapheme_root: int, vowel_diacritic: int, consonant_diacritic: int) -> str:
    """The grapheme string of a label triple, spelled the way the competition spells it.

    Reph is written first in logical order; র with ya-phala gets a zero-width joiner so it does
    not shape as reph over য.
    """
    root = _tables.ROOT_STRINGS[grapheme_root]
    vowel = "" if vowel_diacritic == 0 else _tables.VOWEL_STRINGS[vowel_diacritic]
    if consonant_diacritic == 0:
        return root + vowel
    if consonant_diacritic == 1:
        return root + vowel + _CANDRABINDU
    if consonant_diacritic == 2:
        return _REPH + root + vowel
    if consonant_diacritic == 3:
        return _REPH + root + _YA_PHALA + vowel
    sign = _tables.CONSONANT_STRINGS[consonant_diacritic]
    if root == _RA and consonant_diacritic == 4:
        return root + _ZWJ + sign + vowel
    return root + sign + vowel


def render_text(grapheme: Grapheme) -> str:
    """The string to draw for a grapheme so that it shapes like its labels say.

    Differs from ``grapheme.text`` only where the stored spelling would draw wrongly: a bare
    anusvara or visarga, and the র + ya-phala stored without its joiner.
    """
    text = grapheme.text
    if text.startswith(_BARE_SIGNS):
        return _NO_BREAK_SPACE + text
    if grapheme.grapheme_root == _tables.ROOT_STRINGS.index(_RA) and grapheme.consonant_diacritic == 4:
        return compose(*grapheme.labels)
    return text


@functools.cache
def seen_graphemes() -> tuple[Grapheme, ...]:
    """The 1295 graphemes of the real training set, sorted by label triple then spelling."""
    replaced = dict(_tables.REPLACED_SPELLINGS)
    graphemes = [
        Grapheme(replaced.get(triple, compose(*triple)), *triple) for triple in _tables.SEEN_TRIPLES
    ]
    graphemes += [Grapheme(text, *triple) for triple, text in _tables.EXTRA_SPELLINGS]
    return tuple(sorted(graphemes, key=lambda g: (g.labels, g.text)))


def seen_triples() -> frozenset[tuple[int, int, int]]:
    """The 1292 distinct label triples of the real training set."""
    return frozenset(_tables.SEEN_TRIPLES)


def class_map_rows() -> list[tuple[str, int, str]]:
    """Rows ``(component_type, label, component)`` of the competition's class_map.csv."""
    return [
        (component, label, text)
        for component in COMPONENTS
        for label, text in enumerate(LABEL_STRINGS[component])
    ]


# BanglaLekha-Isolated (Biswas et al. 2017; Mendeley Data hf6sf8zrkc v2): class folder -> the
# competition's grapheme_root of the bare letter, read from the images class by class (the dataset
# ships no map). Folder 50 (chandrabindu alone: consonant_diacritic 1) and 51-60 (digits) are not
# roots and are absent. Folder 48 is ং (root 0), 49 ঃ (root 1).
BANGLALEKHA_FOLDERS = 84
BANGLALEKHA_ROOTS: dict[int, int] = {
    1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 7, 7: 8, 8: 9, 9: 10, 10: 11, 11: 12,  # অ .. ঔ
    12: 13, 13: 22, 14: 23, 15: 29, 16: 31, 17: 38, 18: 42, 19: 43, 20: 48, 21: 49,  # ক .. ঞ
    22: 53, 23: 55, 24: 56, 25: 58, 26: 59, 27: 64, 28: 71, 29: 72, 30: 79, 31: 81,  # ট .. ন
    32: 96, 33: 103, 34: 107, 35: 113, 36: 115, 37: 122, 38: 123, 39: 124,  # প .. ল
    40: 133, 41: 139, 42: 147, 43: 159, 44: 165, 45: 166, 46: 167, 47: 164, 48: 0, 49: 1,  # শ .. ঃ
    61: 18, 62: 109, 63: 36,  # ক্ষ ব্দ ঙ্গ
    64: 148,  # স্ক, read from the images; a widely copied third-party list says ঙ্ক, which is wrong
    65: 154,  # স্ফ
    66: 151,  # probably স্থ: a low-confidence reading of the images
    67: 40, 68: 16, 69: 152, 70: 143, 71: 117, 72: 162, 73: 98, 74: 118,  # চ্ছ ক্ত স্ন ষ্ণ ম্প হ্ম প্ত ম্ব
    75: 85, 76: 77, 77: 67, 78: 142, 79: 129, 80: 144, 81: 89, 82: 91, 83: 120, 84: 61,  # ন্ড .. ণ্ঠ
}
