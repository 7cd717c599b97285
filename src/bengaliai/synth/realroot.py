"""Handwritten roots measured for drawing signs on: their ink, box, matra, stroke width and shades.

A root image from a ``bengaliai.synth.rootbank.RootBank`` is dark ink on light paper in the
competition's 137x236 frame; ``bengaliai.synth.letterforms`` maps a font's signs onto its box and
matra and redraws them with a pen as wide as its strokes, in the grey of its ink on its paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bengaliai.synth.strokes import headline_span, stroke_width, thin

# A handwritten sample with less ink or a lower ink box is a few specks (the import has some).
_MIN_INK, _MIN_HEIGHT = 150, 24


@dataclass(frozen=True)
class RealRoot:
    """A handwritten root image measured once: its ink, box, matra, stroke width and shades."""

    image: np.ndarray
    ink: np.ndarray  # 0/1 mask of its strokes
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends)
    headline: float | None
    matra: tuple[int, int] | None  # x0, x1 of the headline's ink
    stroke: float
    paper: float
    level: float  # the grey of the stroke cores
    noise: float  # std of the paper


def measure_root(image: np.ndarray) -> RealRoot | None:
    """Measure a dark-on-light handwritten letter in the 137x236 frame; None if it is only specks."""
    paper = float(np.median(image))
    dark = image[image < paper - 30]
    if len(dark) < _MIN_INK:
        return None
    ink = (image < 0.5 * (paper + float(np.percentile(dark, 10)))).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(ink)
    if ink.sum() < _MIN_INK or h < _MIN_HEIGHT:
        return None
    box = ink[y : y + h, x : x + w]
    centre = thin(box) > 0
    line = headline_span(box)
    return RealRoot(
        image=image,
        ink=ink,
        box=(x, y, x + w, y + h),
        headline=None if line is None else y + 0.5 * (line[0] + line[1]),
        matra=None if line is None else (x + line[2], x + line[3]),
        stroke=stroke_width(box, centre),
        paper=paper,
        level=float(np.median(image[y : y + h, x : x + w][centre])),
        noise=float(image[image > paper - 6].std()),
    )
