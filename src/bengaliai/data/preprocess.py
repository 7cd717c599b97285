"""Image preprocessing shared by the prepare stage and inference, so both see the same pixels.

``preprocess_batch`` takes images exactly as the competition stores them (137x236 uint8, dark
ink on a light background) and returns them inverted (ink high, background 0) in one of three
modes: ``raw`` keeps the 137x236 frame; ``resize`` pads the frame to a square with background
and resizes it; ``crop`` cuts the bounding box of the ink (pixels darker than a noise
threshold), adds a margin, pads to a square and resizes. Training reads the cache that prepare
writes with this function; the kernel calls it on the test parquet files, so there is no
train/test skew.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from bengaliai.core.competition import HEIGHT, WIDTH

MODES: tuple[str, ...] = ("raw", "resize", "crop")
_BACKGROUND = 255  # in the competition's polarity, before inversion


@dataclass(frozen=True)
class PreprocessConfig:
    """How images become model input; saved beside the cache so a change re-prepares it.

    ``ink_threshold`` is on the inverted scale (ink = 255 - pixel): pixels whose ink is above it
    count for the crop's bounding box, so faint background noise does not widen it.
    ``margin`` is added around that box, in source pixels, before padding to a square.
    """

    mode: str = "crop"
    size: int = 128
    ink_threshold: int = 80
    margin: int = 8

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.size < 1:
            raise ValueError(f"size must be positive, got {self.size}")
        if not 0 <= self.ink_threshold < 255:
            raise ValueError(f"ink_threshold must be in 0..254, got {self.ink_threshold}")
        if self.margin < 0:
            raise ValueError(f"margin must be zero or positive, got {self.margin}")

    @property
    def tag(self) -> str:
        """Name of the cache folder: ``raw``, ``resize128``, ``crop128``..."""
        return "raw" if self.mode == "raw" else f"{self.mode}{self.size}"

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of one output image."""
        return (HEIGHT, WIDTH) if self.mode == "raw" else (self.size, self.size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ink_box(image: np.ndarray, config: PreprocessConfig, mask: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the ink plus margin, or the whole frame when nothing is ink."""
    # Ink above the threshold means pixel < 255 - threshold, i.e. not above 254 - threshold.
    cv2.threshold(image, 254 - config.ink_threshold, 255, cv2.THRESH_BINARY_INV, dst=mask)
    x, y, w, h = cv2.boundingRect(mask)
    if w == 0:
        return slice(None), slice(None)
    m = config.margin
    return slice(max(y - m, 0), y + h + m), slice(max(x - m, 0), x + w + m)


def _fit(image: np.ndarray, out: np.ndarray) -> None:
    """Scale ``image`` so its long side fills the square ``out``, centred on the background there.

    Same picture as padding to a square first and resizing that, but resizes fewer pixels.
    """
    height, width = image.shape
    size = out.shape[0]
    side = max(height, width)
    new_h, new_w = max(1, round(height * size / side)), max(1, round(width * size / side))
    top, left = (size - new_h) // 2, (size - new_w) // 2
    # INTER_AREA averages when shrinking; when a tiny crop must grow it acts like bilinear.
    out[top : top + new_h, left : left + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)


def preprocess_image(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """One (137, 236) uint8 image in competition polarity -> inverted model input."""
    return preprocess_batch(image[None], config)[0]


def preprocess_batch(images: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """(n, 137, 236) uint8 images in competition polarity -> (n, H, W) uint8, ink high.

    H, W are ``config.image_shape``. Pass a C-contiguous array: per-image OpenCV calls on a
    strided view (what ``DataFrame.values.reshape`` gives) run several times slower.
    """
    if images.ndim != 3 or images.shape[1:] != (HEIGHT, WIDTH) or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (n, {HEIGHT}, {WIDTH}), got {images.dtype} {images.shape}")
    if config.mode == "raw":
        return np.subtract(_BACKGROUND, images, dtype=np.uint8)
    out = np.full((len(images), config.size, config.size), _BACKGROUND, dtype=np.uint8)
    mask = np.empty((HEIGHT, WIDTH), dtype=np.uint8)
    for i, image in enumerate(images):
        if config.mode == "crop":
            image = image[_ink_box(image, config, mask)]
        _fit(image, out[i])
    # Inverting the small outputs is cheaper than inverting the inputs, and equal up to rounding.
    np.subtract(_BACKGROUND, out, out=out)
    return out
