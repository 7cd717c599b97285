"""Builders for the tests of real signs: "handwritten" graphemes drawn from a font, and folders of them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, HEIGHT, TRAIN_CSV, WIDTH, compose, image_parquet_name
from bengaliai.core.fileio import write_csv
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.synth.render import RenderConfig, Renderer

PAPER, INK = 248, 48
GLYPH_SIZE = 96  # as SignBank and LetterformDrawer shape their fonts by default


def shaper() -> Renderer:
    """The fonts as the sign bank shapes them (its layouts come from these masks)."""
    return Renderer(RenderConfig(glyph_size=GLYPH_SIZE, glyph_cache_size=0))


def font_written(
    renderer: Renderer, font: int, text: str, scale: float = 1.0, thicken: int = 3, shear: float = 0.1
) -> np.ndarray:
    """``text`` in one font as a "handwritten" grapheme: scaled, thickened like a pen, slanted, dark
    ink on light paper, centred in the 137x236 frame. Heights are kept: the slant is horizontal."""
    mask = renderer.shape(font, text)
    h, w = mask.shape
    mask = cv2.resize(mask, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    if thicken:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thicken, thicken)))
    canvas = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    h, w = mask.shape
    top, left = (HEIGHT - h) // 2, (WIDTH - w) // 2
    canvas[top : top + h, left : left + w] = mask
    slant = np.float32([[1, -shear, shear * HEIGHT / 2], [0, 1, 0]])
    canvas = cv2.warpAffine(canvas, slant, (WIDTH, HEIGHT))
    return (PAPER - canvas.astype(np.int32) * (PAPER - INK) // 255).astype(np.uint8)


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """x, y, w, h of the dark pixels of a font_written image."""
    x, y, w, h = cv2.boundingRect((image < (PAPER + INK) // 2).astype(np.uint8))
    return x, y, w, h


def write_training_folder(
    folder: Path, ids: Sequence[str], triples: Sequence[tuple[int, int, int]], images: np.ndarray, n_files: int = 2
) -> None:
    """train.csv and train_image_data_<i>.parquet of these images, as `bengaliai import` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(i, *t, compose(*t)) for i, t in zip(ids, triples, strict=True)]
    labels = pd.DataFrame(rows, columns=["image_id", *COMPONENTS, "grapheme"])
    write_csv(labels, folder / TRAIN_CSV)
    for f, part in enumerate(np.array_split(np.arange(len(ids)), n_files)):
        write_image_parquet(folder / image_parquet_name("train", f), [ids[i] for i in part], images[part])
