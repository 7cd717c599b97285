"""preprocess_batch: shapes, polarity, crop to the ink, aspect kept, and the no-ink fallback."""

from __future__ import annotations

import numpy as np
import pytest

from bengaliai.core.competition import HEIGHT, WIDTH
from bengaliai.data.preprocess import PreprocessConfig, preprocess_batch, preprocess_image

BACKGROUND = 250


def blank(n: int = 1) -> np.ndarray:
    return np.full((n, HEIGHT, WIDTH), BACKGROUND, dtype=np.uint8)


def ink_box(image: np.ndarray, threshold: int = 128) -> tuple[int, int, int, int]:
    """(height, width, top, left) of the pixels above ``threshold`` in an inverted image."""
    ys, xs = np.nonzero(image > threshold)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1), int(ys.min()), int(xs.min())


def test_config_tag_shape_and_validation() -> None:
    assert PreprocessConfig(mode="raw").tag == "raw"
    assert PreprocessConfig(mode="raw").image_shape == (HEIGHT, WIDTH)
    assert PreprocessConfig(mode="resize", size=64).tag == "resize64"
    assert PreprocessConfig().tag == "crop128" and PreprocessConfig().image_shape == (128, 128)
    for bad in ({"mode": "zoom"}, {"size": 0}, {"ink_threshold": 255}, {"margin": -1}):
        with pytest.raises(ValueError):
            PreprocessConfig(**bad)


@pytest.mark.parametrize(("mode", "shape"), [("raw", (HEIGHT, WIDTH)), ("resize", (96, 96)), ("crop", (96, 96))])
def test_shapes_dtype_and_polarity(mode: str, shape: tuple[int, int]) -> None:
    images = blank(3)
    images[:, 40:90, 60:170] = 30  # a dark stroke
    out = preprocess_batch(images, PreprocessConfig(mode=mode, size=96))
    assert out.shape == (3, *shape) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert out.max() == 255 - 30  # ink is high
    assert np.median(out) <= 255 - BACKGROUND  # background (and padding) is near zero


def test_raw_is_exactly_inverted() -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, HEIGHT, WIDTH), dtype=np.uint8)
    np.testing.assert_array_equal(preprocess_batch(images, PreprocessConfig(mode="raw")), 255 - images)


def test_crop_fills_the_frame_with_the_ink() -> None:
    image = blank()
    image[0, 3:23, 210:230] = 20  # a small dark square near the top right corner
    tight = preprocess_batch(image, PreprocessConfig(mode="crop", size=64, margin=0))[0]
    assert tight.min() >= 255 - 20 - 1  # every output pixel is ink
    framed = preprocess_batch(image, PreprocessConfig(mode="crop", size=64, margin=8))[0]
    height, width, top, left = ink_box(framed)
    # The window is 31x34 (the margin is clipped at the top and right edges); its long side fills 64.
    assert abs(height - 64 * 20 / 34) <= 1.5 and abs(width - 64 * 20 / 34) <= 1.5
    assert abs(left - 64 * 8 / 34) <= 1.5


def test_crop_ignores_faint_noise() -> None:
    image = blank()
    image[0, 60:80, 100:120] = 20
    speckled = image.copy()
    speckled[0, 5, 5] = speckled[0, 130, 230] = 200  # ink 55, under the default threshold of 80
    config = PreprocessConfig(mode="crop", size=64)
    np.testing.assert_array_equal(preprocess_batch(speckled, config)[0] > 128, preprocess_batch(image, config)[0] > 128)


def test_crop_without_ink_falls_back_to_the_whole_image() -> None:
    image = np.random.default_rng(1).integers(240, 256, (1, HEIGHT, WIDTH), dtype=np.uint8)  # noise only
    cropped = preprocess_batch(image, PreprocessConfig(mode="crop", size=64))
    np.testing.assert_array_equal(cropped, preprocess_batch(image, PreprocessConfig(mode="resize", size=64)))


@pytest.mark.parametrize("mode", ["resize", "crop"])
def test_aspect_is_kept(mode: str) -> None:
    images = blank(2)
    images[0, 40:100, 80:140] = 0  # a 60x60 square
    images[1, 50:70, 40:200] = 0  # a 20x160 bar
    out = preprocess_batch(images, PreprocessConfig(mode=mode, size=128))
    square_h, square_w, _, _ = ink_box(out[0])
    bar_h, bar_w, _, _ = ink_box(out[1])
    assert abs(square_h - square_w) <= 1
    assert abs(bar_w / bar_h - 8) < 0.5


def test_resize_pads_evenly_with_background() -> None:
    image = blank()
    image[0] = 0  # all ink: the padding is the only background
    out = preprocess_batch(image, PreprocessConfig(mode="resize", size=128))[0]
    rows_with_ink = np.flatnonzero(out.max(axis=1) > 128)
    content = round(128 * HEIGHT / WIDTH)
    assert len(rows_with_ink) == content
    assert abs(rows_with_ink[0] - (128 - content - rows_with_ink[0])) <= 1 and out[0].max() == 0


def test_strided_input_gives_the_same_result() -> None:
    images = np.random.default_rng(2).integers(0, 256, (5, HEIGHT, WIDTH), dtype=np.uint8)
    strided = np.asfortranarray(images.reshape(5, -1)).reshape(5, HEIGHT, WIDTH)  # like DataFrame.values
    config = PreprocessConfig(mode="crop", size=32)
    np.testing.assert_array_equal(preprocess_batch(strided, config), preprocess_batch(images, config))
    np.testing.assert_array_equal(preprocess_image(images[3], config), preprocess_batch(images, config)[3])


def test_rejects_other_shapes_and_dtypes() -> None:
    with pytest.raises(ValueError, match="137, 236"):
        preprocess_batch(np.zeros((2, 128, 128), dtype=np.uint8), PreprocessConfig())
    with pytest.raises(ValueError, match="uint8"):
        preprocess_batch(np.zeros((2, HEIGHT, WIDTH), dtype=np.float32), PreprocessConfig())
