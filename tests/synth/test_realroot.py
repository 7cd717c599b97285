"""Measuring a handwritten root: its box, matra, stroke width and shades; specks are refused."""

from __future__ import annotations

import cv2
import numpy as np

from bengaliai.core.competition import HEIGHT, WIDTH
from bengaliai.synth.realroot import measure_root


def test_a_letter_is_measured_and_specks_are_not() -> None:
    image = np.full((HEIGHT, WIDTH), 250, dtype=np.uint8)
    cv2.line(image, (80, 40), (150, 40), 40, 5)  # a matra
    cv2.line(image, (140, 40), (140, 100), 40, 5)  # a stem hanging from it
    ink = image < 128
    ys, xs = np.nonzero(ink)
    root = measure_root(image)
    assert root is not None
    assert root.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert root.matra == (xs.min(), xs.max() + 1)
    assert root.headline is not None and abs(root.headline - 40) <= 1
    assert root.stroke == ink[:, 110].sum()  # the matra's thickness
    assert (root.paper, root.level, root.noise) == (250.0, 40.0, 0.0)
    np.testing.assert_array_equal(root.ink, ink)
    specks = np.full((HEIGHT, WIDTH), 250, dtype=np.uint8)
    specks[10:20, 10:20] = 40  # 100 pixels of ink: too few for a letter
    assert measure_root(specks) is None
