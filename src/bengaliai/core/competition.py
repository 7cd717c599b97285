"""Facts of the bengaliai-cv19 competition that every stage shares.

Image shape, the three components and their class counts, the label strings, the graphemes of
the real training set, class counts, file names and the metric weights live here and nowhere
else. Grapheme strings are never Unicode-normalised: the competition stores them as typed, and
NFC/NFD would change some of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bengaliai.core import _tables

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
    75: 62,  # ণ্ড: the looped ligature every bundled font draws for ণ্ড; lists (and an earlier map) say ন্ড
    76: 77, 77: 67, 78: 142, 79: 129, 80: 144, 81: 89, 82: 91, 83: 120, 84: 61,  # দ্ভ .. ণ্ঠ
}

# Handwritten compound characters (github.com/ShahrearBinAmin/Bangla-OCR-Dataset, data/, commit
# 03b188c9; ``bengaliai import compounds``): class folder -> (root, vowel, consonant). The dataset
# ships no class list. Each folder was read from 30-80 of its images against font renderings of
# candidates (a model's votes over the folder, then look-alikes), with a confidence per folder: 107
# high, 40 medium (a close look-alike not ruled out, e.g. 54 ষ্ট্র or স্ট্র, 112 স্ন or ম্ন) are here;
# 17 are absent: 15 hold conjuncts the 168 roots cannot spell (76 ল্দ, 89 স্ণ, 108 ক্ব, 130 ঞ্ঝ, 137
# থ্ব, 140 দ্দ্ব, 151 ণ্ম?, 153 ম্ফ, 157 ঙ্ম, 158 ক্ম, 159 চ্ঞ, 160 দ্গ, 162 ট্ব, 166 শ্ছ, 167 জ্ঝ), 2 were
# unsure (138, 143). Some classes occur twice (4 and 22 ত্র, 12 and 146 স্থ, 31 and 121 জ্ঞ).
COMPOUND_FOLDERS = frozenset(set(range(1, 169)) - {43, 44, 45, 46})
COMPOUND_GRAPHEMES: dict[int, tuple[int, int, int]] = {
    1: (96, 0, 5), 2: (36, 0, 0), 3: (18, 0, 0), 4: (64, 0, 5), 5: (89, 0, 0), 6: (40, 0, 0),  # প্র ঙ্গ ক্ষ ত্র ন্দ চ্ছ
    7: (86, 0, 0), 8: (89, 0, 5), 9: (150, 0, 0), 10: (86, 4, 0), 11: (23, 0, 5), 12: (151, 0, 0),  # ন্ত ন্দ্র স্ত ন্তু গ্র স্থ
    13: (149, 0, 0), 14: (118, 0, 0), 15: (155, 0, 0), 16: (65, 0, 0), 17: (16, 0, 0), 18: (83, 0, 0),  # স্ট ম্ব স্ব ত্ত ক্ত ন্ট
    19: (129, 0, 0), 20: (141, 0, 0), 21: (86, 0, 5), 22: (64, 0, 5), 23: (92, 0, 0), 24: (75, 0, 0),  # ল্প ষ্ট ন্ত্র ত্র ন্ন দ্ধ
    25: (91, 0, 0), 26: (32, 0, 0), 27: (85, 0, 0), 28: (103, 0, 5), 29: (117, 0, 0), 30: (148, 0, 0),  # ন্ধ ঙ্ক ন্ড ফ্র ম্প স্ক
    31: (46, 0, 0), 32: (15, 0, 0), 33: (134, 0, 0), 34: (53, 0, 5), 35: (69, 0, 0), 36: (132, 0, 0),  # জ্ঞ ক্ট শ্চ ট্র ত্ব ল্ল
    37: (107, 0, 5), 38: (50, 0, 0), 39: (62, 0, 0), 40: (13, 0, 5), 41: (133, 0, 5), 42: (72, 0, 5),  # ব্র ঞ্চ ণ্ড ক্র শ্র দ্র
    47: (136, 0, 0), 48: (109, 0, 0), 49: (135, 0, 0), 50: (100, 0, 0), 51: (112, 0, 0), 52: (98, 0, 0),  # শ্ব ব্দ শ্ন প্প ব্ল প্ত
    53: (17, 0, 0), 54: (141, 0, 5), 55: (76, 0, 0), 56: (53, 0, 5), 57: (28, 0, 0), 58: (127, 0, 0),  # ক্ল ষ্ট্র দ্ব ট্র গ্ল ল্ট
    59: (142, 0, 0), 60: (150, 0, 5), 61: (101, 0, 0), 62: (39, 0, 0), 63: (156, 0, 0), 64: (74, 0, 0),  # ষ্ঠ স্ত্র প্ল চ্চ স্ম দ্দ
    65: (25, 0, 0), 66: (47, 0, 0), 67: (140, 0, 0), 68: (70, 0, 0), 69: (56, 0, 5), 70: (120, 0, 0),  # গ্ন জ্ব ষ্ক ত্ম ড্র ম্ম
    71: (60, 0, 0), 72: (117, 0, 5), 73: (99, 0, 0), 74: (94, 0, 0), 75: (154, 0, 0), 77: (66, 0, 0),  # ণ্ট ম্প্র প্ন ন্ম স্ফ ত্ত্ব
    78: (44, 0, 0), 79: (20, 0, 0), 80: (143, 0, 0), 81: (93, 0, 0), 82: (14, 0, 0), 83: (88, 0, 0),  # জ্জ ক্ষ্ম ষ্ণ ন্ব ক্ক ন্থ
    84: (57, 0, 0), 85: (111, 0, 0), 86: (83, 0, 5), 87: (61, 0, 0), 88: (97, 0, 0), 90: (80, 0, 0),  # ড্ড ব্ব ন্ট্র ণ্ঠ প্ট ধ্ব
    91: (160, 0, 0), 92: (113, 0, 5), 93: (125, 0, 0), 94: (157, 0, 0), 95: (163, 0, 0), 96: (68, 0, 0),  # হ্ন ভ্র ল্ক স্ল হ্ল ত্ন
    97: (140, 0, 5), 98: (29, 0, 5), 99: (77, 0, 0), 100: (138, 0, 0), 101: (110, 0, 0), 102: (146, 0, 0),  # ষ্ক্র ঘ্র দ্ভ শ্ল ব্ধ ষ্ম
    103: (148, 0, 5), 104: (36, 0, 0), 105: (45, 0, 0), 106: (137, 0, 0), 107: (78, 0, 0), 109: (115, 0, 5),  # স্ক্র ঙ্গ জ্জ্ব শ্ম দ্ম ম্র
    110: (24, 0, 0), 111: (108, 0, 0), 112: (152, 0, 0), 113: (90, 0, 0), 114: (162, 0, 0), 115: (37, 0, 0),  # গ্ধ ব্জ স্ন ন্দ্ব হ্ম ঙ্ঘ
    116: (22, 0, 5), 117: (67, 0, 0), 118: (130, 0, 0), 119: (116, 0, 0), 120: (30, 0, 0), 121: (46, 0, 0),  # খ্র ত্থ ল্ব ম্ন ঘ্ন জ্ঞ
    122: (19, 0, 0), 123: (23, 4, 5), 124: (41, 0, 0), 125: (63, 0, 0), 126: (131, 0, 0), 127: (147, 0, 5),  # ক্ষ্ণ গ্রু চ্ছ্ব ণ্ণ ল্ম স্র
    128: (121, 0, 0), 129: (144, 0, 5), 131: (153, 0, 5), 132: (119, 0, 5), 133: (144, 0, 0), 134: (35, 0, 0),  # ম্ল ষ্প্র স্প্র ম্ভ্র ষ্প ঙ্খ
    135: (43, 0, 5), 136: (26, 0, 0), 139: (161, 0, 0), 141: (73, 0, 0), 142: (79, 0, 5), 144: (27, 0, 0),  # জ্র গ্ব হ্ব দ্ঘ ধ্র গ্ম
    145: (126, 0, 0), 146: (151, 0, 0), 147: (71, 0, 5), 148: (91, 0, 5), 149: (106, 0, 0), 150: (34, 0, 0),  # ল্গ স্থ থ্র ন্ধ্র ফ্ল ঙ্ক্ষ
    152: (51, 0, 0), 154: (159, 0, 5), 155: (133, 4, 5), 156: (72, 4, 5), 161: (85, 0, 5), 163: (102, 0, 0),  # ঞ্ছ হ্র শ্রু দ্রু ন্ড্র প্স
    164: (128, 0, 0), 165: (145, 0, 0), 168: (149, 0, 5),  # ল্ড ষ্ফ স্ট্র
}
