"""Prior correction: rescale predicted probabilities by the training class frequencies.

A classifier trained on imbalanced classes leans towards the frequent ones, while the metric (macro
recall) weighs every class alike. Dividing each probability by its class frequency to the power
``alpha`` (``p / freq**alpha``, then renormalised) moves decisions towards rare classes; top teams
of the competition gained +0.01 to +0.02 on the private leaderboard with it. ``alpha`` = 0 leaves
the probabilities as they are; its best value is tuned on the out-of-fold probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.core.errors import BengaliaiError
from bengaliai.evaluation.metric import competition_score

# 0, 0.05, ..., 1.5: finer steps than this only fit the noise of the out-of-fold set. Past 1 because
# short runs (the demo's) chose the old edge 1.0; oof warns when the best is still the largest value.
ALPHA_GRID: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(31))
# A correction is kept only if it gains at least this much out of fold; smaller gains are noise
# (on a few thousand images one more image right moves a macro recall by about that much).
MIN_GAIN = 0.001


def class_counts(labels: pd.DataFrame) -> dict[str, np.ndarray]:
    """Images per class of each component in a frame of read_train_labels (int64, every class)."""
    return {name: np.bincount(labels[name].to_numpy(), minlength=N_CLASSES[name]).astype(np.int64) for name in COMPONENTS}


def apply_prior(
    probabilities: Mapping[str, np.ndarray], counts: Mapping[str, Sequence[int] | np.ndarray], alpha: float
) -> dict[str, np.ndarray]:
    """``p / freq**alpha`` renormalised per image, for each component; float32.

    Frequencies are add-one smoothed (``(count + 1) / (total + classes)``), so a class that
    training never saw does not divide by zero. ``alpha`` = 0 returns the probabilities unchanged.
    """
    if alpha < 0:
        raise BengaliaiError(f"prior alpha must be zero or positive, got {alpha}")
    out = {}
    for name in COMPONENTS:
        p = np.asarray(probabilities[name], dtype=np.float32)
        if alpha == 0:
            out[name] = p
            continue
        count = np.asarray(counts[name], dtype=np.float64)
        if count.shape != (p.shape[1],):
            raise BengaliaiError(f"{name}: {p.shape[1]} classes of probabilities but {count.shape[0]} class counts")
        freq = (count + 1.0) / (count.sum() + len(count))
        scaled = p * (freq ** -alpha).astype(np.float32)
        out[name] = scaled / scaled.sum(axis=1, keepdims=True)
    return out


def tune_alpha(
    probabilities: Mapping[str, np.ndarray],
    y_true: Mapping[str, np.ndarray],
    counts: Mapping[str, np.ndarray],
    grid: Sequence[float] = ALPHA_GRID,
    min_gain: float = MIN_GAIN,
) -> tuple[float, dict[float, float]]:
    """The alpha of ``grid`` with the best competition score, and the score of every alpha.

    Ties go to the smaller alpha, and an alpha that beats no correction (alpha 0) by less than
    ``min_gain`` gives way to 0: the correction is only kept where it clearly helps.
    """
    scores = {}
    for alpha in grid:
        corrected = apply_prior(probabilities, counts, alpha)
        predicted = {name: corrected[name].argmax(axis=1) for name in COMPONENTS}
        scores[float(alpha)] = competition_score(y_true, predicted).score
    best = max(sorted(scores), key=lambda a: (scores[a], -a))
    if 0.0 in scores and scores[best] - scores[0.0] < min_gain:
        best = 0.0
    return best, scores
