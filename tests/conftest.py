"""Shared fixtures: a tiny competition-format dataset whose labels are learnable in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bengaliai.competition import HEIGHT, TRAIN_CSV, WIDTH, compose, image_parquet_name
from bengaliai.fileio import write_csv
from bengaliai.parquet_images import write_image_parquet

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# Few classes per component, each drawn as a distinct shape, so a tiny network learns them fast.
PATTERN_ROOTS = (13, 22, 23, 38, 53, 64)
PATTERN_VOWELS = (0, 1, 2)
PATTERN_CONSONANTS = (0, 2)


def pattern_image(root: int, vowel: int, consonant: int, rng: np.random.Generator) -> np.ndarray:
    """A light 137x236 image with dark marks that encode the three labels."""
    image = np.full((HEIGHT, WIDTH), 250, dtype=np.uint8)
    dx, dy = (int(v) for v in rng.integers(-6, 7, size=2))
    for bar in range(PATTERN_ROOTS.index(root) + 1):
        x = 40 + 18 * bar + dx
        cv2.line(image, (x, 30 + dy), (x, 100 + dy), 60, 5)
    y = 30 + 35 * PATTERN_VOWELS.index(vowel) + dy
    cv2.line(image, (160 + dx, y), (215 + dx, y), 60, 5)
    if consonant:
        cv2.circle(image, (185 + dx, 115 + dy), 12, 60, 4)
    return image


def write_pattern_dataset(root_dir: Path, n_train: int, seed: int = 0, n_files: int = 2) -> pd.DataFrame:
    """Write train.csv and train_image_data_*.parquet of pattern images; return the labels."""
    rng = np.random.default_rng(seed)
    rows, images = [], []
    for i in range(n_train):
        root = PATTERN_ROOTS[i % len(PATTERN_ROOTS)]
        vowel = PATTERN_VOWELS[(i // len(PATTERN_ROOTS)) % len(PATTERN_VOWELS)]
        consonant = PATTERN_CONSONANTS[(i // 7) % len(PATTERN_CONSONANTS)]
        rows.append((f"Train_{i}", root, vowel, consonant, compose(root, vowel, consonant)))
        images.append(pattern_image(root, vowel, consonant, rng))
    labels = pd.DataFrame(rows, columns=["image_id", "grapheme_root", "vowel_diacritic", "consonant_diacritic", "grapheme"])
    root_dir.mkdir(parents=True, exist_ok=True)
    write_csv(labels, root_dir / TRAIN_CSV)
    stack = np.stack(images)
    for f, part in enumerate(np.array_split(np.arange(n_train), n_files)):
        write_image_parquet(root_dir / image_parquet_name("train", f), labels["image_id"].iloc[part].tolist(), stack[part])
    return labels


@pytest.fixture
def pattern_dataset(tmp_path: Path) -> Path:
    """A 240-image pattern dataset in competition format."""
    write_pattern_dataset(tmp_path / "input", 240)
    return tmp_path / "input"
