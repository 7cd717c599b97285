"""Cutting a handwritten grapheme into its root and signs with fonts' layouts voting; the font layouts themselves."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bengaliai.core.competition import HEIGHT, LABEL_STRINGS, WIDTH, compose
from bengaliai.synth.fontsigns import FontParts, Signs, extract_signs, font_parts
from bengaliai.synth.realsigns import FAINT, NO_FONT, SIGN_SHARE, SMALL_ROOT, cut_signs
from bengaliai.synth.render import Renderer
from bengaliai.synth.signbank import layouts

from sign_builders import INK, PAPER, font_written, ink_box, shaper

KA = 13
KA_TEXT = LABEL_STRINGS["grapheme_root"][KA]
# Font 1 is one of the three that vote on ক's graphemes (the first three that hold it intact); 5 and 7
# (anek-bangla, noto-sans) are not: the cut must work on a hand it has not seen.
WRITERS = (1, 5, 7)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return shaper()


def _cut(renderer: Renderer, vowel: int, font: int) -> tuple[Signs, int]:
    """ক with ``vowel`` as font ``font`` writes it, cut; and the height of the bare ক written the same way."""
    text = compose(KA, vowel, 0)
    found = layouts(renderer, text, KA_TEXT, 0.97)
    assert len(found) == 3
    cut = cut_signs(font_written(renderer, font, text), found)
    assert isinstance(cut, Signs), f"{text} in font {font} refused: {cut}"
    return cut, ink_box(font_written(renderer, font, KA_TEXT))[3]


def _points(signs: Signs) -> np.ndarray:
    return np.concatenate([links.reshape(-1, 2) for links in signs.segments])


@pytest.mark.parametrize("font", WRITERS)
@pytest.mark.parametrize("vowel", [1, 2, 4, 7, 9])  # া ি ু ে ো
def test_the_signs_lie_where_the_script_puts_them(renderer: Renderer, vowel: int, font: int) -> None:
    signs, root_height = _cut(renderer, vowel, font)
    x0, y0, w, h = signs.box
    assert (x0, y0) == (0, 0)
    # The box is the root's, not the grapheme's: ি rises above it, ু hangs below it.
    assert abs(h / root_height - 1) < 0.12
    xs, ys = _points(signs).T
    if vowel == 1:  # া: right of the root
        assert np.mean(xs > w / 2) > 0.95 and np.mean(xs >= w - 2) > 0.9
    elif vowel == 2:  # ি: the stem left of the root's middle, the loop rising over its top
        assert np.mean(xs < w / 2) > 0.85 and ys.min() < -0.2 * h
    elif vowel == 4:  # ু: under the root
        assert np.mean(ys > 0.85 * h) > 0.85
    elif vowel == 7:  # ে: left of the root
        assert np.mean(xs < 0) > 0.95
    else:  # ো: ে on the left and া on the right, two signs
        assert len(signs.segments) == 2
        sides = sorted(float(np.mean(links[..., 0])) for links in signs.segments)
        assert sides[0] < 0 and sides[1] > w
    for links, anchor in zip(signs.segments, signs.anchors, strict=True):
        # Each font joins these signs to the root: the cut keeps where, a point of the sign by the root's box.
        assert anchor is not None
        assert any(np.array_equal(anchor, point) for point in links.reshape(-1, 2))
        assert -0.15 * w <= anchor[0] <= 1.15 * w and -0.15 * h <= anchor[1] <= 1.15 * h


@pytest.mark.parametrize("font", WRITERS)
def test_a_matra_drawn_over_the_sign_is_the_graphemes(renderer: Renderer, font: int) -> None:
    right, _ = _cut(renderer, 1, font)  # কা: the matra runs on over া
    assert right.headline is not None and right.headline < 0.15 * right.box[3]
    assert right.matra is not None and right.matra[0] <= 1 and right.matra[1] > right.box[2] + 5
    left, _ = _cut(renderer, 2, font)  # কি: over ি's stem
    assert left.matra is not None and left.matra[0] < -5 and left.matra[1] >= left.box[2] - 1


def test_a_sign_written_apart_from_the_root_has_no_anchor(renderer: Renderer) -> None:
    image = font_written(renderer, 5, KA_TEXT)
    x, y, w, h = ink_box(image)
    bar = x + w + 14  # া written 14 px to the right of ক, not touching it
    cv2.line(image, (bar, y + 4), (bar, y + h - 1), INK, 4)
    signs = cut_signs(image, layouts(renderer, compose(KA, 1, 0), KA_TEXT, 0.97))
    assert isinstance(signs, Signs)
    assert len(signs.segments) == 1 and signs.anchors == [None]
    assert abs(signs.box[2] - w) <= 2 and abs(signs.box[3] - h) <= 2
    assert _points(signs)[:, 0].min() >= w + 8


def test_no_layout_faint_or_too_small_writing_is_refused(renderer: Renderer) -> None:
    ka = font_written(renderer, 5, compose(KA, 1, 0))
    found = layouts(renderer, compose(KA, 1, 0), KA_TEXT, 0.97)
    assert cut_signs(ka, []) == NO_FONT
    # ক্র is one new glyph in every bundled font: no font lays it out as ক plus a sign.
    assert layouts(renderer, compose(KA, 0, 5), KA_TEXT, 0.97) == []
    assert cut_signs(np.full((HEIGHT, WIDTH), PAPER, np.uint8), found) == FAINT
    specks = np.full((HEIGHT, WIDTH), PAPER, np.uint8)
    specks[60:70, 100:110] = INK  # 100 dark pixels: less than a letter's ink
    assert cut_signs(specks, found) == FAINT
    # কা written 30% of the size: enough ink, but a root under 20 px high is no letter to take signs from.
    tiny = font_written(renderer, 5, compose(KA, 1, 0), scale=0.3)
    assert (tiny < PAPER - 30).sum() > 150
    assert cut_signs(tiny, found) == SMALL_ROOT


def _split_layout(sign_share: float) -> FontParts:
    """A made-up font layout of a square: the root on the left, the sign the right ``sign_share`` of it."""
    full = np.ones((100, 100), np.uint8)
    rest = np.zeros_like(full)
    rest[:, 100 - round(100 * sign_share) :] = 1
    return FontParts(full, 1 - rest, rest, (0, 0), 1 - rest, 4.0, 3)


def _ladder() -> np.ndarray:
    """Seven horizontal strokes 160 px long on a spine: a letter-like ink of known spread."""
    image = np.full((HEIGHT, WIDTH), PAPER, np.uint8)
    cv2.line(image, (40, 20), (40, 116), INK, 4)
    for y in range(20, 120, 16):
        cv2.line(image, (40, y), (200, y), INK, 4)
    return image


LADDER_WIDTH = 165  # its ink box, pen included


@pytest.mark.parametrize(
    ("share", "expected"), [(0.02, SIGN_SHARE), (0.1, None), (0.3, None), (0.7, None), (0.9, SIGN_SHARE)]
)
def test_a_cut_with_too_little_or_too_much_sign_is_refused(share: float, expected: str | None) -> None:
    # Three fonts agreeing; the sign is about ``share`` of the ink, and only 4% to 75% is believed.
    cut = cut_signs(_ladder(), [_split_layout(share)] * 3)
    if expected is not None:
        assert cut == expected
        return
    assert isinstance(cut, Signs) and len(cut.segments) == 7  # the right end of each stroke
    assert abs(cut.box[2] - (1 - share) * LADDER_WIDTH) < 4 and cut.box[3] >= 100
    assert _points(cut)[:, 0].min() >= cut.box[2] - 1  # every sign stroke is right of the root


def test_a_sign_of_a_few_pixels_is_refused() -> None:
    # The fonts put the sign in the top right corner: only the end of the top stroke, 3% of the ink.
    full = np.ones((100, 100), np.uint8)
    rest = np.zeros_like(full)
    rest[:12, 80:] = 1
    corner = FontParts(full, 1 - rest, rest, (0, 0), 1 - rest, 4.0, 3)
    assert cut_signs(_ladder(), [corner] * 3) == SIGN_SHARE


def test_most_fonts_decide() -> None:
    one_dissents = cut_signs(_ladder(), [_split_layout(0.9), _split_layout(0.3), _split_layout(0.3)])
    assert isinstance(one_dissents, Signs) and abs(one_dissents.box[2] - 0.7 * LADDER_WIDTH) < 4
    assert cut_signs(_ladder(), [_split_layout(0.9), _split_layout(0.9), _split_layout(0.3)]) == SIGN_SHARE


@pytest.mark.parametrize(("vowel", "consonant"), [(1, 0), (2, 0), (9, 0), (4, 0), (0, 4), (0, 1)])
@pytest.mark.parametrize("font", [0, 5, 9])
def test_extract_signs_is_built_from_font_parts(renderer: Renderer, vowel: int, consonant: int, font: int) -> None:
    text = compose(KA, vowel, consonant)
    parts = font_parts(renderer, font, text, KA_TEXT, 0.97)
    signs = extract_signs(renderer, font, text, KA_TEXT, 0.97)
    assert parts is not None and signs is not None
    np.testing.assert_array_equal(parts.full, renderer.shape(font, text) > 127)
    np.testing.assert_array_equal(parts.root, renderer.shape(font, KA_TEXT) > 127)
    # The bare root pasted whole where it was found, and found intact in the grapheme.
    (x, y), (rh, rw) = parts.origin, parts.root.shape
    assert parts.placed.shape == parts.full.shape and parts.placed.sum() == parts.root.sum()
    np.testing.assert_array_equal(parts.placed[y : y + rh, x : x + rw], parts.root)
    grown = cv2.dilate(parts.full, np.ones((3, 3), np.uint8))
    assert (grown & parts.placed).sum() >= 0.97 * parts.root.sum()
    # The rest: the grapheme's ink beyond the root dilated by ``radius``.
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * parts.radius + 1, 2 * parts.radius + 1))
    np.testing.assert_array_equal(parts.rest, parts.full & (1 - cv2.dilate(parts.placed, disc)))
    # The signs: in the root's box, made of the rest's centre lines, one per large enough piece of it.
    assert signs.box == (0, 0, rw, rh)
    rest_pixels = {(int(px), int(py)) for py, px in zip(*np.nonzero(parts.rest), strict=True)}
    for links, anchor in zip(signs.segments, signs.anchors, strict=True):
        points = links.reshape(-1, 2) + np.array([x, y], np.float32)
        assert {(int(px), int(py)) for px, py in points} <= rest_pixels
        if anchor is not None:
            assert any(np.array_equal(anchor, point) for point in links.reshape(-1, 2))
    n, _, stats, _ = cv2.connectedComponentsWithStats(parts.rest, connectivity=8)
    large = sum(stats[i, cv2.CC_STAT_AREA] >= max(6.0, 0.8 * parts.stroke**2) for i in range(1, n))
    assert len(signs.segments) == large >= 1


def test_a_ligature_has_no_font_parts(renderer: Renderer) -> None:
    text = compose(KA, 0, 5)  # ক্র
    for font in renderer.fonts_for(text):
        assert font_parts(renderer, font, text, KA_TEXT, 0.97) is None
        assert extract_signs(renderer, font, text, KA_TEXT, 0.97) is None
