"""The competition metric against the host's formula, hand-computed cases and the 2:1:1 weights."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.core.errors import BengaliaiError
from bengaliai.evaluation.metric import Score, competition_score, macro_recall, predictions_from_probabilities


def sklearn_recall(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes only predicted: sklearn warns and scores 0
        return float(recall_score(y_true, y_pred, average="macro"))


def reference_score(y_true: dict[str, np.ndarray], y_pred: dict[str, np.ndarray]) -> float:
    """The host's scoring code, in substance."""
    scores = [sklearn_recall(y_true[c], y_pred[c]) for c in COMPONENTS]
    return float(np.average(scores, weights=[2, 1, 1]))


def random_labels(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    # A skewed distribution so that some classes are missing from a small sample.
    p = rng.dirichlet(np.full(n_classes, 0.3))
    return rng.choice(n_classes, size=n, p=p)


@pytest.mark.parametrize("seed", range(6))
def test_macro_recall_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 60))
    y_true = random_labels(rng, int(rng.integers(1, 300)), n_classes)
    # Predictions partly right, partly any class, including classes absent from y_true.
    y_pred = np.where(rng.random(len(y_true)) < 0.5, y_true, rng.integers(0, n_classes + 5, len(y_true)))
    y_pred[0] = n_classes + 3  # a class that is never true
    assert macro_recall(y_true, y_pred) == pytest.approx(sklearn_recall(y_true, y_pred), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_competition_score_equals_reference_formula(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = 500
    y_true = {c: random_labels(rng, n, N_CLASSES[c]) for c in COMPONENTS}
    y_pred = {c: np.where(rng.random(n) < 0.7, y_true[c], rng.integers(0, N_CLASSES[c], n)) for c in COMPONENTS}
    score = competition_score(y_true, y_pred)
    assert score.score == pytest.approx(reference_score(y_true, y_pred), abs=1e-12)
    for c in COMPONENTS:
        assert getattr(score, c) == pytest.approx(sklearn_recall(y_true[c], y_pred[c]), abs=1e-12)


def test_perfect_predictions_score_one() -> None:
    y = {c: np.arange(N_CLASSES[c]) for c in COMPONENTS}
    assert competition_score(y, y) == Score(1.0, 1.0, 1.0, 1.0)


def test_recall_not_precision() -> None:
    # Class 0: 4 true, 2 found; class 1: 1 true, 1 found (and 2 false alarms).
    y_true = np.array([0, 0, 0, 0, 1])
    y_pred = np.array([0, 0, 1, 1, 1])
    # Recall: (2/4 + 1/1) / 2 = 0.75. Precision (the swapped call): (2/2 + 1/3) / 2 = 2/3.
    assert macro_recall(y_true, y_pred) == pytest.approx(0.75)
    assert macro_recall(y_pred, y_true) == pytest.approx(2 / 3)
    assert sklearn_recall(y_true, y_pred) == pytest.approx(0.75)


def test_class_only_predicted_counts_as_zero_recall() -> None:
    # Classes {0, 1, 2}: recall 1, 0.5, and 0 for class 2 which is never true.
    assert macro_recall([0, 1, 1], [0, 1, 2]) == pytest.approx(1.5 / 3)


@pytest.mark.parametrize("seed", range(4))
def test_recall_over_the_true_classes_equals_sklearn_with_those_labels(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n_classes = int(rng.integers(2, 60))
    y_true = random_labels(rng, int(rng.integers(1, 300)), n_classes)
    y_pred = np.where(rng.random(len(y_true)) < 0.5, y_true, rng.integers(0, n_classes + 5, len(y_true)))
    y_pred[0] = n_classes + 3
    expected = float(recall_score(y_true, y_pred, labels=np.unique(y_true), average="macro"))
    assert macro_recall(y_true, y_pred, "true") == pytest.approx(expected, abs=1e-12)


def test_a_subset_scores_as_it_counts_inside_a_set_with_every_class() -> None:
    # A subset of 4 images of classes 0 and 1, two of them misread as classes 2 and 3 that it does not hold.
    subset_true, subset_pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 3])
    # Inside a test set where classes 2 and 3 occur (read right), the misreads cost only classes 0 and 1:
    # class 0's recall is 1/2, class 1's is 1/2, classes 2 and 3 keep recall 1.
    rest = np.array([2, 2, 3, 3])
    whole = macro_recall(np.concatenate([subset_true, rest]), np.concatenate([subset_pred, rest]))
    assert whole == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)
    assert macro_recall(subset_true, subset_pred, "true") == pytest.approx(0.5)  # what the subset loses
    assert macro_recall(subset_true, subset_pred) == pytest.approx(1 / 4)  # union: 2 and 3 enter at recall 0
    # The union figure falls with the variety of the mistakes, the true-class one does not.
    assert macro_recall(subset_true, np.array([0, 2, 1, 2])) == pytest.approx(1 / 3)
    assert macro_recall(subset_true, np.array([0, 2, 1, 2]), "true") == pytest.approx(0.5)


def test_competition_score_over_true_classes() -> None:
    y_true = {c: np.array([0, 0, 1, 1]) for c in COMPONENTS}
    y_pred = {**y_true, "grapheme_root": np.array([0, 5, 1, 1])}
    held = competition_score(y_true, y_pred, "true")
    assert held.grapheme_root == pytest.approx(0.75)
    assert held.score == pytest.approx((2 * 0.75 + 1 + 1) / 4)
    assert competition_score(y_true, y_pred).grapheme_root == pytest.approx(1.5 / 3)


def test_unknown_class_set_is_refused() -> None:
    with pytest.raises(BengaliaiError, match="classes must be one of"):
        macro_recall([0], [0], "all")  # type: ignore[arg-type]


def test_wrong_vowel_costs_half_a_wrong_root() -> None:
    y_true = {c: np.array([0, 1]) for c in COMPONENTS}
    wrong_root = {**y_true, "grapheme_root": np.array([0, 0])}
    wrong_vowel = {**y_true, "vowel_diacritic": np.array([0, 0])}
    root_loss = 1 - competition_score(y_true, wrong_root).score
    vowel_loss = 1 - competition_score(y_true, wrong_vowel).score
    assert root_loss == pytest.approx(2 * vowel_loss)
    assert vowel_loss == pytest.approx(0.5 / 4)  # recall 0.5 on one component of weight 1/4


def test_accepts_arrays_and_frames_and_ignores_extra_keys() -> None:
    rng = np.random.default_rng(7)
    labels = np.stack([rng.integers(0, N_CLASSES[c], 50) for c in COMPONENTS], axis=1)
    noisy = labels.copy()
    noisy[::3] = 0
    frame_true = pd.DataFrame(labels, columns=list(COMPONENTS)).assign(grapheme="x")
    frame_pred = pd.DataFrame(noisy, columns=list(COMPONENTS))
    expected = competition_score(labels, noisy)
    assert competition_score(frame_true, frame_pred) == expected
    as_dict = {c: noisy[:, i] for i, c in enumerate(COMPONENTS)} | {"grapheme": np.zeros(50)}
    assert competition_score(labels, as_dict) == expected
    assert list(expected.as_dict()) == [*COMPONENTS, "score"]


def test_predictions_from_probabilities_is_argmax() -> None:
    rng = np.random.default_rng(3)
    logits = {c: rng.normal(size=(20, N_CLASSES[c])) for c in COMPONENTS}
    predictions = predictions_from_probabilities(logits)
    for c in COMPONENTS:
        assert np.array_equal(predictions[c], logits[c].argmax(1))
    assert competition_score(predictions, predictions).score == 1.0


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(BengaliaiError, match="one length"):
        macro_recall([0, 1], [0, 1, 1])
    with pytest.raises(BengaliaiError, match="no labels"):
        macro_recall([], [])
    with pytest.raises(BengaliaiError, match="missing component.*consonant_diacritic"):
        competition_score({"grapheme_root": [0], "vowel_diacritic": [0]}, np.zeros((1, 3), int))
    with pytest.raises(BengaliaiError, match=r"\(N, 3\)"):
        competition_score(np.zeros((4, 2), int), np.zeros((4, 3), int))
    with pytest.raises(BengaliaiError, match="shape"):
        predictions_from_probabilities({"grapheme_root": np.zeros(5)})
