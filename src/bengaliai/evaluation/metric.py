"""The competition metric: macro recall per component, weighted 2:1:1 over root, vowel, consonant.

The host scored ``sklearn.metrics.recall_score(y_true, y_pred, average="macro")`` per component
and ``np.average(scores, weights=[2, 1, 1])``. ``macro_recall`` computes the same number with
numpy in one pass (sklearn's input validation dominates its run time on a validation set).
Note the argument order: swapping truth and prediction gives macro *precision*, a different
number, which several public pipelines reported by mistake.

Subsets (the seen and the held-out graphemes of the folds apart, a small sample of real writing) are
scored with ``classes="true"``: recall averaged over the classes the subset holds. sklearn's default
averages over every class in truth *or* prediction, so on a subset each class an image is wrongly
read as, if the subset holds none of it, enters the average with recall 0: the figure then falls with
the number of distinct mistakes and with the subset's size, not with the model. In the competition's
test set every class occurs, so a misread image costs only its own class's recall, which is what the
``"true"`` average measures. The whole validation set is scored as the host did (``"union"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from bengaliai.core.competition import COMPONENTS, METRIC_WEIGHTS
from bengaliai.core.errors import BengaliaiError

# "union": every class in truth or prediction (the host's sklearn default); "true": the truth's classes.
Classes = Literal["union", "true"]
CLASS_SETS: tuple[Classes, ...] = ("union", "true")
# How a group of a validation set is scored (seen and held-out graphemes apart; oof, routing): over the
# classes it holds, as it would count inside a test set where every class occurs (module docstring).
GROUP_CLASSES: Classes = "true"


@dataclass(frozen=True)
class Score:
    """Macro recall of each component and the weighted competition score."""

    grapheme_root: float
    vowel_diacritic: float
    consonant_diacritic: float
    score: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def macro_recall(y_true: ArrayLike, y_pred: ArrayLike, classes: Classes = "union") -> float:
    """Recall averaged over classes, equal to ``recall_score(y_true, y_pred, average="macro")``.

    With ``classes="union"``, like sklearn with its default labels, the average runs over every class
    in ``y_true`` or ``y_pred``: a class that is only predicted counts with recall 0. With
    ``classes="true"`` it runs over the classes of ``y_true`` only (sklearn's
    ``labels=np.unique(y_true)``): the score of a subset of a test set in which every class occurs.
    """
    if classes not in CLASS_SETS:
        raise BengaliaiError(f"macro_recall: classes must be one of {', '.join(CLASS_SETS)}, got {classes!r}")
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.ndim != 1 or true.shape != pred.shape:
        raise BengaliaiError(f"macro_recall: expected two 1-D label arrays of one length, "
                             f"got shapes {true.shape} and {pred.shape}")
    if len(true) == 0:
        raise BengaliaiError("macro_recall: no labels to score")
    labels, index = np.unique(np.concatenate([true, pred]), return_inverse=True)
    true_index = index[: len(true)]
    support = np.bincount(true_index, minlength=len(labels))
    hits = np.bincount(true_index[true == pred], minlength=len(labels))
    present = support > 0
    averaged = len(labels) if classes == "union" else int(np.count_nonzero(present))
    return float(np.sum(hits[present] / support[present]) / averaged)


def competition_score(y_true: Any, y_pred: Any, classes: Classes = "union") -> Score:
    """The competition score of predicted labels against true labels.

    Each argument is a mapping (dict, DataFrame) from component name to labels, or an array of
    shape (N, 3) with columns in ``COMPONENTS`` order. Other keys (an auxiliary head) are ignored.
    ``classes="true"`` scores a subset (see the module docstring and ``macro_recall``).
    """
    truth, predicted = _by_component(y_true, "y_true"), _by_component(y_pred, "y_pred")
    recalls = {name: macro_recall(truth[name], predicted[name], classes) for name in COMPONENTS}
    total = float(np.average([recalls[name] for name in COMPONENTS], weights=METRIC_WEIGHTS))
    return Score(**recalls, score=total)


def predictions_from_probabilities(outputs: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    """Predicted labels (argmax) from logits or probabilities of shape (N, classes) per output."""
    predictions = {}
    for name, values in outputs.items():
        array = np.asarray(values)
        if array.ndim != 2:
            raise BengaliaiError(f"{name}: expected scores of shape (N, classes), got {array.shape}")
        predictions[name] = array.argmax(axis=1)
    return predictions


def _by_component(labels: Any, what: str) -> dict[str, np.ndarray]:
    if isinstance(labels, Mapping) or hasattr(labels, "columns"):
        names = set(labels.keys())
        missing = [name for name in COMPONENTS if name not in names]
        if missing:
            raise BengaliaiError(f"{what}: missing component(s) {', '.join(missing)}")
        return {name: np.asarray(labels[name]) for name in COMPONENTS}
    array = np.asarray(labels)
    if array.ndim != 2 or array.shape[1] != len(COMPONENTS):
        raise BengaliaiError(
            f"{what}: expected a mapping of components or an (N, 3) array, got shape {array.shape}"
        )
    return {name: array[:, i] for i, name in enumerate(COMPONENTS)}
