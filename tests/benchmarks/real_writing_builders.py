"""Builders for the tests of the real-writing benchmarks: untrained tiny runs as training writes them, tiny folders
of labelled "real" writing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from bengaliai.core.competition import COMPONENTS, compose
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.data.runinfo import write_run_description
from bengaliai.model.checkpoint import save_checkpoint
from bengaliai.model.classifier import ModelConfig, build_model

from builders import PATTERN_ROOTS, pattern_image

# (root, vowel, consonant) of the images of a tiny real-writing folder: vowels 0, ী (3), ে (7) and ো (9).
REAL_LABELS = ((13, 0, 0), (22, 3, 2), (23, 3, 0), (38, 7, 0), (53, 9, 2), (64, 0, 0), (13, 3, 0))


def write_real_folder(
    folder: Path, labels: Sequence[tuple[int, int, int]] = REAL_LABELS, prefix: str = "Dev"
) -> pd.DataFrame:
    """137x236 pattern PNGs and labels.csv, as a folder of labelled real writing holds them."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (root, vowel, consonant) in enumerate(labels):
        vowel_row = (0, 1, 2)[i % 3]  # pattern_image draws only the pattern vowels; the labels need not match
        cv2.imwrite(str(folder / f"{prefix}_{i}.png"), pattern_image(root, vowel_row, consonant, rng))
        rows.append((f"{prefix}_{i}", root, vowel, consonant, compose(root, vowel, consonant)))
    truth = pd.DataFrame(rows, columns=["image_id", *COMPONENTS, "grapheme"])
    write_csv(truth, folder / "labels.csv")
    return truth


def write_untrained_run(experiment: Path, folds: int = 2, oof: dict[str, object] | None = None) -> Path:
    """A freshly initialised tiny resnet saved as training saves a run: fold<K>/{config.yaml, run.json, best.pt}.

    The input folder (train.csv, train_folds.csv) sits beside ``runs``; ``oof`` becomes oof.json when given.
    """
    input_dir = experiment.parent.parent / f"input_{experiment.name}"
    input_dir.mkdir(parents=True, exist_ok=True)
    (input_dir / "train.csv").write_text(f"image_id,grapheme_root\nTrain_0,{PATTERN_ROOTS[0]}\n", encoding="utf-8")
    (input_dir / "train_folds.csv").write_text("image_id,fold,unseen\nTrain_0,0,False\n", encoding="utf-8")
    model_config = ModelConfig(arch="resnet10", base_width=8)
    config = {"experiment": experiment.name, "folds_file": "train_folds.csv", "model": dataclasses.asdict(model_config),
              "data": {"input": str(input_dir), "mean": 0.06, "std": 0.2}}
    for fold in range(folds):
        fold_dir = experiment / f"fold{fold}"
        write_run_description(fold_dir, config | {"fold": fold})
        torch.manual_seed(fold)
        weights = build_model(model_config).state_dict()
        state = {"config": config | {"fold": fold}, "fold": fold, "epoch": 0, "best_score": 0.0, "weights": weights,
                 "preprocess": dataclasses.asdict(PreprocessConfig(mode="resize", size=32))}
        save_checkpoint(state, fold_dir / "best.pt")
    if oof is not None:
        write_json(oof, experiment / "oof.json")
    return experiment
