"""Drawing grapheme images: fonts shape every grapheme cleanly; images look like the real ones."""

from __future__ import annotations

import numpy as np
import pytest

from bengaliai.core.competition import HEIGHT, WIDTH, Grapheme, compose, render_text, seen_graphemes
from bengaliai.core.errors import BengaliaiError
from bengaliai.synth import render
from bengaliai.synth.render import DEFAULT_FONTS, FONT_GAPS, RenderConfig, Renderer
from bengaliai.synth.shaping import ShapingCheck
from bengaliai.synth.strokes import thin
from bengaliai.synth.unseen import unseen_triples


def broken_texts(name: str, texts: list[str]) -> list[str]:
    """Texts with a character the font lacks, or that draw a tofu box or a dotted circle."""
    check = ShapingCheck(name)  # refuses a font without U+25CC, where broken clusters would go unseen
    return [text for text in texts if not check.clean(text)]


def _seen_texts() -> list[str]:
    return [render_text(g) for g in seen_graphemes()]


def _unseen_texts() -> list[str]:
    return [render_text(Grapheme(compose(*t), *t)) for t in unseen_triples()]


def _usable(name: str, texts: list[str]) -> list[str]:
    return [t for t in texts if not any(gap in t for gap in FONT_GAPS.get(name, ()))]


def test_the_check_catches_tofu_and_dotted_circles() -> None:
    # A bare vowel sign and অ + া get a dotted circle; a Thai letter is missing from the font.
    texts = ["ক", "\u09bf", "অা", "\u0e01", "ক্ষ্ম"]
    assert broken_texts(DEFAULT_FONTS[0], texts) == ["\u09bf", "অা", "\u0e01"]


@pytest.mark.parametrize("name", DEFAULT_FONTS)
def test_fonts_draw_a_sample_of_graphemes_cleanly(name: str) -> None:
    seen = _seen_texts()
    tricky = [t for t in seen if t.startswith("\u00a0") or "\u200d" in t]  # bare ং/ঃ, র + ya-phala
    sample = tricky + seen[::37] + _unseen_texts()[::29]
    assert broken_texts(name, _usable(name, sample)) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", DEFAULT_FONTS)
def test_fonts_draw_every_seen_and_unseen_grapheme_cleanly(name: str) -> None:
    assert broken_texts(name, _usable(name, _seen_texts() + _unseen_texts())) == []


def test_font_gaps_are_real_gaps() -> None:
    for name, gaps in FONT_GAPS.items():
        assert broken_texts(name, list(gaps)) == list(gaps)
        chosen = Renderer(RenderConfig()).fonts_for(gaps[0] + "া")
        assert DEFAULT_FONTS.index(name) not in chosen and chosen


def test_missing_raqm_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render.features, "check", lambda feature: False)
    with pytest.raises(BengaliaiError, match="raqm"):
        Renderer(RenderConfig())


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(RenderConfig())


def _sample_images(renderer: Renderer, n: int, seed: int = 0) -> list[np.ndarray]:
    graphemes = seen_graphemes()
    picks = np.random.default_rng(seed).choice(len(graphemes), n)
    return [renderer.render(render_text(graphemes[p]), np.random.default_rng([seed, i])) for i, p in enumerate(picks)]


def test_images_are_dark_ink_on_light_paper(renderer: Renderer) -> None:
    for image in _sample_images(renderer, 60):
        assert image.shape == (HEIGHT, WIDTH) and image.dtype == np.uint8
        assert np.median(image) >= 235
        assert image.min() <= 110
        assert 0.01 < np.mean(image < 128) < 0.4


def _assert_nothing_clipped(image: np.ndarray) -> None:
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    # Paper with noise stays far above this; any ink on the border would go below it.
    assert border.min() > 200, "ink reaches the border"


def test_nothing_is_clipped(renderer: Renderer) -> None:
    for image in _sample_images(renderer, 300, seed=1):
        _assert_nothing_clipped(image)


def test_nothing_is_clipped_even_at_extreme_sizes() -> None:
    config = RenderConfig(
        body_height=(150.0, 200.0), stroke_width=(9.0, 10.0), blur_sigma=(1.5, 2.0), elastic_amplitude=(5.0, 6.0)
    )
    big = Renderer(config)
    for image in _sample_images(big, 40, seed=2):
        _assert_nothing_clipped(image)


def test_same_generator_same_image_with_or_without_the_glyph_cache(renderer: Renderer) -> None:
    uncached = Renderer(RenderConfig(glyph_cache_size=0))
    for i, grapheme in enumerate(seen_graphemes()[::200]):
        text = render_text(grapheme)
        first = renderer.render(text, np.random.default_rng([5, i]))
        assert np.array_equal(first, renderer.render(text, np.random.default_rng([5, i])))
        assert np.array_equal(first, uncached.render(text, np.random.default_rng([5, i])))
        assert not np.array_equal(first, renderer.render(text, np.random.default_rng([6, i])))


def test_glyph_cache_is_bounded() -> None:
    small = Renderer(RenderConfig(glyph_cache_size=3))
    for i, grapheme in enumerate(seen_graphemes()[:20]):
        small.render(render_text(grapheme), np.random.default_rng(i))
    assert small.cached_glyphs <= 3


def test_pen_strokes_have_one_width_where_the_typeface_has_two() -> None:
    import cv2

    def widths(pen_p: float) -> np.ndarray:
        config = RenderConfig(
            fonts=("tiro-bangla-400.ttf",), pen_p=pen_p, stroke_width=(6.0, 6.0), blur_sigma=(0.0, 0.0),
            noise_std=(0.0, 0.0), elastic_amplitude=(0.0, 0.0),
        )
        out = []
        for i, grapheme in enumerate(seen_graphemes()[:40]):
            ink = (Renderer(config).render(render_text(grapheme), np.random.default_rng(i)) < 128).astype(np.uint8)
            distance = cv2.distanceTransform(ink, cv2.DIST_L2, 5)
            out.append(2 * distance[thin(ink) == 1])
        return np.concatenate(out)

    pen, typeface = widths(1.0), widths(0.0)
    assert abs(np.median(pen) - 6) <= 1.5
    assert np.std(pen) < 0.7 * np.std(typeface)
