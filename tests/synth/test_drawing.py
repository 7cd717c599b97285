"""Drawing a dataset's images in chunks: no chunk straddles two files; each image as if drawn alone."""

from __future__ import annotations

from collections import Counter

import numpy as np

from bengaliai.core.competition import render_text
from bengaliai.synth.drawing import FONT, draw_image, drawn_chunks
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.sampling import TEST_CODE, TRAIN_CODE, file_sizes, image_rng, sample_train


def test_chunks_follow_the_files_and_hold_each_image_as_drawn_alone() -> None:
    config = RenderConfig(fonts=("mina-400.ttf",))
    plans = {"train": sample_train(10, seed=4), "test": sample_train(3, seed=5)}
    with drawn_chunks(plans, seed=4, workers=1, config=config) as chunks:
        drawn = list(chunks)
    assert [len(images) for images, _ in drawn] == file_sizes(10) + file_sizes(3)
    assert sum((kinds for _, kinds in drawn), Counter()) == Counter({FONT: 13})
    images = np.concatenate([images for images, _ in drawn])
    renderer = Renderer(config)
    codes = [TRAIN_CODE] * 10 + [TEST_CODE] * 3
    indices = [*range(10), *range(3)]
    for image, grapheme, code, index in zip(images, plans["train"] + plans["test"], codes, indices, strict=True):
        expected = renderer.render(render_text(grapheme), image_rng(4, code, index))
        np.testing.assert_array_equal(image, expected)
        alone, kind = draw_image(renderer, None, grapheme, 4, code, index)
        assert kind == FONT
        np.testing.assert_array_equal(image, alone)
