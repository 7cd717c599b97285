"""Draw a binarised handwritten character into a 137x236 frame that looks like a competition image.

Used by the importers of external handwriting (BanglaLekha-Isolated): their crisp, tightly cropped
white-on-black masks become dark, slightly uneven ink on light paper, at the sizes, positions,
stroke widths and grey levels of the real competition images.

Measured on the 12 real competition images and compared with the 243 real dev images (which are
normalised to about 104 px high and centred, so only their levels and strokes count): ink box
(ink below 160, components of 30 px and more) 50-134 px high (median 93) and 61-183 wide (median
115), bare letters 50x147 (আ) and 64x88; box centre y 53-79 (median 65), x 93-143 (median 109,
mean 114). Paper 251-255 (median 254-255, often saturated at 255) with a spread of 1-3 grey
levels and per-pixel noise of about 0.5; ink 1.5 px or more inside a stroke 38-67 on average
(dev 37-46) with a spread of 15-20; the darkest tenth of the ink 23-55; stroke thickness (2 x
area / outline length of the ink) 3.4-6.5 px, median 5.0 (dev 4.4-6.5, median 5.1); about half
as many half-tone pixels (100-220) as ink pixels. The defaults of ``PlacementConfig`` reproduce
these within about a grey level or 0.2 px, except the spread inside strokes (14 against 17); the
boxes come out smaller (median 78x89) because bare letters carry no diacritics.

The mask becomes a signed distance field, so that resizing gives smooth edges and strokes can be
thinned or thickened by a fraction of a pixel; it is scaled, blurred, placed at a random position
and shaded. Everything random comes from the generator passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from bengaliai.core.competition import HEIGHT, WIDTH


@dataclass(frozen=True)
class PlacementConfig:
    """How a binarised character becomes a competition-like image; ranges are (low, high) drawn uniformly."""

    scale: tuple[float, float] = (0.5, 0.85)  # output px per source px (log-uniform)
    max_box: tuple[int, int] = (132, 226)  # the ink box never exceeds this (height, width)
    center_y: tuple[float, float] = (65.0, 7.0)  # mean and sd of the ink box centre
    center_x: tuple[float, float] = (114.0, 14.0)
    stroke: tuple[float, float] = (4.0, 6.0)  # stroke thickness aimed at, px
    max_thinning: float = 0.3  # each side loses at most this fraction of the scaled stroke
    max_thickening: float = 1.0  # each side gains at most this many px
    blur_sigma: tuple[float, float] = (0.4, 0.8)
    ink: tuple[float, float] = (25.0, 65.0)
    ink_variation: float = 10.0  # sd of a slow field over the ink level (pen pressure)
    ink_texture: float = 8.0  # sd of a field varying every few px over the ink (ink flow)
    ink_grain: float = 12.0  # sd of per-pixel variation of the ink
    paper: tuple[float, float] = (251.0, 256.0)  # above 255 saturates, as real paper often does
    paper_gradient: float = 3.0  # at most this many grey levels of change across the frame
    noise: tuple[float, float] = (0.5, 2.0)  # sd of the per-pixel noise of the paper
    speck_fraction: float = 0.004  # ink components smaller than this share of the ink are dropped
    # The source image is enlarged this many times (bicubic, in grey) before its ink is thresholded: a small
    # anti-aliased scan (strokes of 1-2 px) keeps smooth, unbroken strokes, where thresholding it first
    # leaves one-pixel diagonals that the scaled outline breaks into dashes. ``scale`` applies after it.
    upsample: int = 1
    # Grey levels above this (after inverting light ink on dark paper) are paper; faint thin strokes of a
    # small JPEG need a threshold nearer the paper to stay whole (placement then thins them to ``stroke``).
    ink_threshold: int = 127



def stroke_thickness(ink: np.ndarray) -> float:
    """Mean stroke width in px: twice the ink area over the length of its outlines."""
    mask = ink.view(np.uint8) if ink.dtype == bool else (ink > 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * float(mask.sum()) / max(perimeter, 1.0)


def place_character(ink: np.ndarray, rng: np.random.Generator, config: PlacementConfig) -> np.ndarray:
    """A (137, 236) uint8 image of the ink mask: dark ink on light paper, sized and shaded like the competition's."""
    h, w = ink.shape
    scale = math.exp(rng.uniform(*np.log(config.scale)))
    scale = min(scale, config.max_box[0] / h, config.max_box[1] / w)
    # Change of each stroke side, in output px: thin strokes that scaling leaves too thick.
    scaled = stroke_thickness(ink) * scale
    shift = (scaled - rng.uniform(*config.stroke)) / 2
    shift = float(np.clip(shift, -config.max_thickening, config.max_thinning * scaled))
    pad = math.ceil((4 + config.max_thickening) / scale)  # room for blur and thickening
    mask = np.pad(ink, pad).view(np.uint8)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5)
    # Signed distance to the outline (positive in the ink), which lies half a pixel outside the ink pixels.
    field = np.where(mask > 0, inside - 0.5, 0.5 - outside)
    out_h, out_w = max(1, round(mask.shape[0] * scale)), max(1, round(mask.shape[1] * scale))
    field = cv2.resize(field, (out_w, out_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    cover = np.clip(field * scale - shift + 0.5, 0.0, 1.0)
    cover = cv2.GaussianBlur(cover, (0, 0), rng.uniform(*config.blur_sigma))
    # Centre the ink box at a drawn position, kept inside the frame.
    box_h, box_w = h * scale, w * scale
    cy = float(np.clip(rng.normal(*config.center_y), box_h / 2, HEIGHT - box_h / 2))
    cx = float(np.clip(rng.normal(*config.center_x), box_w / 2, WIDTH - box_w / 2))
    top, left = round(cy - out_h / 2), round(cx - out_w / 2)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + out_h, HEIGHT), min(left + out_w, WIDTH)
    window = (slice(y0, y1), slice(x0, x1))
    return _shade(cover[y0 - top : y1 - top, x0 - left : x1 - left], window, rng, config)


_ROWS = np.linspace(-0.5, 0.5, HEIGHT, dtype=np.float32)[:, None]
_COLUMNS = np.linspace(-0.5, 0.5, WIDTH, dtype=np.float32)[None, :]


def _smooth_field(rng: np.random.Generator, cells: tuple[int, int]) -> np.ndarray:
    """A random field over the frame, varying over about a cell, with sd about 1."""
    grid = rng.standard_normal(cells, dtype=np.float32)
    return cv2.resize(grid, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)


def _shade(
    cover: np.ndarray, window: tuple[slice, slice], rng: np.random.Generator, config: PlacementConfig
) -> np.ndarray:
    """Ink coverage in [0, 1] over ``window`` -> grey levels: paper with a faint gradient, uneven ink, noise."""
    gy, gx = (float(g) * config.paper_gradient for g in rng.uniform(-1.0, 1.0, 2))
    paper = (rng.uniform(*config.paper) + gy * _ROWS) + gx * _COLUMNS
    # One normal field serves as the paper's noise and the ink's grain, scaled apart below.
    noise = rng.standard_normal((HEIGHT, WIDTH), dtype=np.float32)
    paper_noise = rng.uniform(*config.noise)
    image = paper + paper_noise * noise
    # The ink level varies slowly (pressure), over a few px (ink flow) and from pixel to pixel.
    ink = rng.uniform(*config.ink) + config.ink_variation * _smooth_field(rng, (4, 6))[window]
    ink += config.ink_texture * _smooth_field(rng, (HEIGHT // 4, WIDTH // 4))[window]
    ink += (config.ink_grain - paper_noise) * noise[window]  # the paper's share is in the image already
    region = image[window]
    region += cover * (ink - paper[window])
    image += 0.5  # rounds to nearest when truncated below
    return np.clip(image, 0, 255, out=image).astype(np.uint8)
