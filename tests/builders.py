"""Builders of tiny competition-format data for the tests: pattern images whose labels are learnable in seconds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bengaliai.core.competition import (
    COMPONENTS,
    HEIGHT,
    SAMPLE_SUBMISSION_CSV,
    TEST_CSV,
    TRAIN_CSV,
    WIDTH,
    compose,
    image_parquet_name,
)
from bengaliai.core.fileio import write_csv
from bengaliai.data.labels import make_test_rows
from bengaliai.data.parquet_images import write_image_parquet

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


def write_pattern_dataset(
    root_dir: Path, n_train: int, seed: int = 0, n_files: int = 2, prefix: str = "Train"
) -> pd.DataFrame:
    """Write train.csv and train_image_data_*.parquet of pattern images (ids ``<prefix>_<i>``); return the labels."""
    rng = np.random.default_rng(seed)
    rows, images = [], []
    for i in range(n_train):
        root = PATTERN_ROOTS[i % len(PATTERN_ROOTS)]
        vowel = PATTERN_VOWELS[(i // len(PATTERN_ROOTS)) % len(PATTERN_VOWELS)]
        consonant = PATTERN_CONSONANTS[(i // 7) % len(PATTERN_CONSONANTS)]
        rows.append((f"{prefix}_{i}", root, vowel, consonant, compose(root, vowel, consonant)))
        images.append(pattern_image(root, vowel, consonant, rng))
    labels = pd.DataFrame(rows, columns=["image_id", "grapheme_root", "vowel_diacritic", "consonant_diacritic", "grapheme"])
    root_dir.mkdir(parents=True, exist_ok=True)
    write_csv(labels, root_dir / TRAIN_CSV)
    stack = np.stack(images)
    for f, part in enumerate(np.array_split(np.arange(n_train), n_files)):
        write_image_parquet(root_dir / image_parquet_name("train", f), labels["image_id"].iloc[part].tolist(), stack[part])
    return labels


def fake_run(tmp_path: Path) -> Path:
    """A run whose only checkpoint is an empty file: any attempt to read it fails loudly."""
    (tmp_path / "runs" / "fake" / "fold0").mkdir(parents=True)
    (tmp_path / "runs" / "fake" / "fold0" / "best.pt").write_bytes(b"")
    return tmp_path / "runs" / "fake"


def write_pattern_test(root_dir: Path, n_test: int, seed: int = 1, n_files: int = 2) -> pd.DataFrame:
    """Write test.csv, sample_submission.csv and test_image_data_*.parquet; return the true labels.

    Rows of test.csv follow the competition: three per image, components in TEST_COMPONENT_ORDER.
    """
    rng = np.random.default_rng(seed)
    rows, images = [], []
    for i in range(n_test):
        labels = (int(rng.choice(PATTERN_ROOTS)), int(rng.choice(PATTERN_VOWELS)), int(rng.choice(PATTERN_CONSONANTS)))
        rows.append((f"Test_{i}", *labels, compose(*labels)))
        images.append(pattern_image(*labels, rng))
    truth = pd.DataFrame(rows, columns=["image_id", *COMPONENTS, "grapheme"])
    test_rows = make_test_rows(truth["image_id"].tolist())
    write_csv(test_rows, root_dir / TEST_CSV)
    write_csv(pd.DataFrame({"row_id": test_rows["row_id"], "target": 0}), root_dir / SAMPLE_SUBMISSION_CSV)
    stack = np.stack(images)
    for f, part in enumerate(np.array_split(np.arange(n_test), n_files)):
        write_image_parquet(root_dir / image_parquet_name("test", f), truth["image_id"].iloc[part].tolist(), stack[part])
    return truth
