"""Tiny stand-ins for the imported datasets, drawn with cv2: the real ones are never used in tests.

``make_banglalekha`` writes BanglaLekha-Isolated's ``Images/<folder>/*.png`` of white strokes on
black; ``make_compounds`` the compound characters' ``<folder>/*.jpg`` of dark strokes on white at
their 42x28 px.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Folders 1 (অ), 12 (ক) and 64 (স্ক) are roots, 51 is a digit, "extra" is not a class folder.
LAYOUT = {"1": 3, "12": 2, "64": 3, "51": 2, "extra": 1}
ROOT_ROWS = 3 + 2 + 3


def banglalekha_character(rng: np.random.Generator, height: int = 60, width: int = 70) -> np.ndarray:
    """White strokes on black, like the dataset: a head line, a stem and a loop."""
    image = np.zeros((height, width), dtype=np.uint8)
    cv2.line(image, (5, 8), (width - 5, 8 + int(rng.integers(0, 4))), 255, 6)
    cv2.line(image, (width - 15, 8), (width - 15, height - 6), 255, 6)
    cv2.circle(image, (width // 3, height // 2 + 5), int(rng.integers(8, 14)), 255, 5)
    return image


def make_banglalekha(root: Path, layout: dict[str, int] = LAYOUT) -> Path:
    rng = np.random.default_rng(0)
    for folder, n in layout.items():
        (root / "Images" / folder).mkdir(parents=True)
        for i in range(n):
            name = f"01_0001_{i % 2}_1{i}_0916_{1990 + i:04d}_{folder}.png"
            cv2.imwrite(str(root / "Images" / folder / name), banglalekha_character(rng))
    (root / "Readme.txt").write_text("not an image\n")
    return root


def compound_character(rng: np.random.Generator) -> np.ndarray:
    """Dark strokes on white at the dataset's size (42 wide, 28 high)."""
    image = np.full((28, 42), 255, dtype=np.uint8)
    cv2.line(image, (3, 4), (38, 4 + int(rng.integers(0, 2))), 0, 2)
    cv2.line(image, (30, 4), (30, 24), 0, 2)
    cv2.circle(image, (14, 15), int(rng.integers(4, 7)), 0, 2)
    return image


def make_compounds(root: Path, layout: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for folder, n in layout.items():
        (root / folder).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / folder / f"{folder}-{i:03d}.jpg"), compound_character(rng))
    return root
