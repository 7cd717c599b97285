"""A class-per-folder dataset's images read to their ink: cropped, cleaned of specks, either polarity."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bengaliai.handwriting.class_folders import read_character


def test_read_character_crops_the_ink_drops_specks_and_accepts_either_polarity(tmp_path: Path) -> None:
    image = np.zeros((50, 60), dtype=np.uint8)
    image[5:45, 20:40] = 255
    image[48, 2] = 255  # a one-pixel speck far from the character
    cv2.imwrite(str(tmp_path / "a.png"), image)
    cv2.imwrite(str(tmp_path / "b.png"), 255 - image)
    for name in ("a.png", "b.png"):
        assert read_character(tmp_path / name).shape == (40, 20)
