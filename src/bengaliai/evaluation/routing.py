"""Seen/unseen routing: decode confidently seen graphemes with the auxiliary head, the rest with the components.

The hidden test set held graphemes that never occur in train.csv. The auxiliary head
(``model.aux_graphemes``) classifies the 1295 training graphemes as wholes, which is more accurate on
them than three independent component heads, but it cannot name a grapheme it was never trained on.
Routing keeps both: an image whose out-of-distribution score is at or above a threshold takes the
label triple of the head's top grapheme; every other image takes the component heads' argmax after
the prior correction. The prior acts on the component path only: it corrects component class
frequencies, and the images routed to the grapheme head are the confident ones it would not move.

Scores (higher: more likely a seen grapheme): ``msp`` the largest softmax probability, ``margin`` the
first minus the second, ``energy`` the logsumexp of the logits (the negative free energy of Liu et al.
2020). ``bengaliai oof`` tunes the score, its threshold and the component path's alpha out of fold,
where each fold's held-out graphemes (``unseen`` in train_folds.csv) play the unseen test graphemes.
The head's full probabilities are not stored (40k validation images x 1295 x 4 B = 207 MB a fold):
oof.npz and the ensemble keep only what the scores need, the top ``TOP_K`` graphemes with their
probabilities and the logsumexp (44 bytes an image). An ensemble averages the probabilities and the
logsumexp over folds and views, then takes the top graphemes of the mean.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bengaliai.core.competition import COMPONENTS, METRIC_WEIGHTS, N_CLASSES, seen_graphemes
from bengaliai.core.errors import BengaliaiError
from bengaliai.evaluation.metric import GROUP_CLASSES, Classes
from bengaliai.evaluation.priors import ALPHA_GRID, MIN_GAIN, apply_prior

log = logging.getLogger(__name__)

TOP_K = 5
TOP_INDEX, TOP_PROB, LOGSUMEXP = "grapheme_top_index", "grapheme_top_prob", "grapheme_logsumexp"
AUX_KEYS: tuple[str, ...] = (TOP_INDEX, TOP_PROB, LOGSUMEXP)
SCORES: tuple[str, ...] = ("msp", "margin", "energy")  # ties go to the first
# Threshold candidates: the score's quantiles in steps of 0.5 % of the out-of-fold images.
_QUANTILES = np.linspace(0.0, 1.0, 201)


@functools.cache
def grapheme_triples() -> np.ndarray:
    """(1295, 3) label triples of the auxiliary head's classes (competition.seen_graphemes order)."""
    return np.array([g.labels for g in seen_graphemes()], dtype=np.int64)


def aux_summary(probabilities: torch.Tensor, logsumexp: torch.Tensor, k: int = TOP_K) -> dict[str, np.ndarray]:
    """What routing keeps of (B, 1295) grapheme probabilities and the (B,) logsumexp of their logits."""
    top = torch.topk(probabilities.float(), k, dim=1)
    return {TOP_INDEX: top.indices.to(torch.int16).cpu().numpy(), TOP_PROB: top.values.cpu().numpy(),
            LOGSUMEXP: logsumexp.float().cpu().numpy()}


def ood_score(aux: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """The score ``name`` of SCORES per image; higher means more likely a grapheme the head was trained on."""
    if name == "msp":
        return np.asarray(aux[TOP_PROB][:, 0], dtype=np.float64)
    if name == "margin":
        return np.asarray(aux[TOP_PROB][:, 0], dtype=np.float64) - aux[TOP_PROB][:, 1]
    if name == "energy":
        return np.asarray(aux[LOGSUMEXP], dtype=np.float64)
    raise BengaliaiError(f"unknown routing score {name!r}; known: {', '.join(SCORES)}")


@dataclass(frozen=True)
class Routing:
    """A tuned routing rule: images with ``score >= threshold`` take the grapheme head's triple."""

    score: str
    threshold: float

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise BengaliaiError(f"unknown routing score {self.score!r}; known: {', '.join(SCORES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.score} >= {self.threshold:.6g}"


def routed_mask(aux: Mapping[str, np.ndarray], routing: Routing) -> np.ndarray:
    """Which images the rule sends to the grapheme head."""
    return ood_score(aux, routing.score) >= routing.threshold


def route(labels: Mapping[str, np.ndarray], aux: Mapping[str, np.ndarray], routing: Routing) -> dict[str, np.ndarray]:
    """Component labels with the routed images replaced by their top grapheme's triple."""
    mask = routed_mask(aux, routing)
    triples = grapheme_triples()[np.asarray(aux[TOP_INDEX][:, 0], dtype=np.int64)]
    return {name: np.where(mask, triples[:, i], labels[name]) for i, name in enumerate(COMPONENTS)}


def check_aux(aux: Mapping[str, np.ndarray], n: int, where: str) -> None:
    """Raise BengaliaiError unless ``aux`` holds routing arrays for ``n`` images (``where`` names the source)."""
    absent = [key for key in AUX_KEYS if key not in aux]
    if absent:
        raise BengaliaiError(f"{where}: missing array(s) {', '.join(absent)}")
    index, prob, lse = (np.asarray(aux[key]) for key in AUX_KEYS)
    if index.ndim != 2 or index.shape[0] != n or prob.shape != index.shape or index.shape[1] < 2 or lse.shape != (n,):
        raise BengaliaiError(f"{where}: routing arrays of shapes {index.shape}, {prob.shape}, {lse.shape}; "
                             f"expected ({n}, k >= 2) twice and ({n},)")
    if index.size and (index.min() < 0 or index.max() >= len(seen_graphemes())):
        raise BengaliaiError(f"{where}: {TOP_INDEX} outside 0..{len(seen_graphemes()) - 1}")


@dataclass(frozen=True)
class Candidate:
    """The best threshold of one score, with the alpha of the component path tuned alongside it."""

    score_name: str
    threshold: float
    alpha: float
    score: float
    kept_seen: float  # share of seen-grapheme images the grapheme head decodes
    passed_unseen: float  # share of unseen-grapheme images passed on to the component heads
    routed_accuracy: float | None  # share of routed images whose triple is right (None: none routed)
    seen_score: float = float("nan")  # the metric on seen-grapheme images alone, with this routing
    unseen_score: float = float("nan")  # ... and on unseen-grapheme images alone


@dataclass(frozen=True)
class RoutingReport:
    """Out-of-fold routing: every candidate score, the best one, and whether it gains enough to be used."""

    best: Candidate
    score_without: float  # no routing, the prior's own alpha
    candidates: dict[str, Candidate]
    n_seen: int
    n_unseen: int
    min_gain: float = MIN_GAIN
    seen_without: float = float("nan")  # the metric on seen images alone without routing (the prior's alpha)
    unseen_without: float = float("nan")

    @property
    def gain(self) -> float:
        return self.best.score - self.score_without

    @property
    def routing(self) -> Routing | None:
        """The rule predict applies, or None where routing does not gain ``min_gain`` out of fold."""
        if self.gain < self.min_gain or not np.isfinite(self.best.threshold):
            return None
        return Routing(self.best.score_name, self.best.threshold)

    def as_json(self) -> dict[str, Any]:
        """oof.json's ``routing``: ``score_name``, ``threshold`` (null: off) and ``alpha`` are read at test time."""
        rule = self.routing
        return {
            "score_name": self.best.score_name, "threshold": None if rule is None else rule.threshold,
            "alpha": self.best.alpha, "score": self.best.score,
            "score_without": self.score_without, "gain": self.gain, "min_gain": self.min_gain,
            "kept_seen": self.best.kept_seen, "passed_unseen": self.best.passed_unseen,
            "routed_accuracy": self.best.routed_accuracy, "n_seen": self.n_seen, "n_unseen": self.n_unseen,
            "seen_score": _finite_value(self.best.seen_score), "unseen_score": _finite_value(self.best.unseen_score),
            "seen_without": _finite_value(self.seen_without), "unseen_without": _finite_value(self.unseen_without),
            "top_k": TOP_K, "candidates": {name: _finite(asdict(c)) for name, c in self.candidates.items()},
        }

    def summary(self) -> str:
        best = self.best
        shares = f"keeps {best.kept_seen:.1%} of seen images, passes {best.passed_unseen:.1%} of unseen ones on"
        head = (f"routing {best.score_name} >= {best.threshold:.4g} (component alpha {best.alpha:g}) scores "
                f"{best.score:.4f} ({self.gain:+.4f} over no routing); {shares}")
        parts = (f"\n    with it: seen {best.seen_score:.4f} ({self.seen_without:.4f} without), "
                 f"unseen {best.unseen_score:.4f} ({self.unseen_without:.4f} without)")
        if self.routing is None:
            return f"  {head}: below the {self.min_gain:g} needed, routing stays off{parts}"
        return f"  {head}{parts}"


def _finite_value(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else value


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (_finite_value(v) if isinstance(v, float) else v) for k, v in values.items()}


def competition_score_fast(y_true: np.ndarray, y_pred: np.ndarray, classes: Classes = "union") -> float:
    """metric.competition_score of (N, 3) label arrays with bincounts (the tuning scores thousands of them)."""
    total = 0.0
    for i, (name, weight) in enumerate(zip(COMPONENTS, METRIC_WEIGHTS, strict=True)):
        true, pred = y_true[:, i], y_pred[:, i]
        support = np.bincount(true, minlength=N_CLASSES[name])
        hits = np.bincount(true[true == pred], minlength=N_CLASSES[name])
        present = support > 0
        if classes == "union":
            averaged = np.count_nonzero(present | (np.bincount(pred, minlength=N_CLASSES[name]) > 0))
        else:
            averaged = np.count_nonzero(present)
        total += weight * float(np.sum(hits[present] / support[present]) / averaged)
    return total / sum(METRIC_WEIGHTS)


def tune_routing(
    probabilities: Mapping[str, np.ndarray],
    aux: Mapping[str, np.ndarray],
    y_true: Mapping[str, np.ndarray],
    unseen: np.ndarray,
    counts: Mapping[str, np.ndarray],
    prior_alpha: float,
    alpha_grid: Sequence[float] = ALPHA_GRID,
    min_gain: float = MIN_GAIN,
) -> RoutingReport:
    """Tune each score's threshold and the component path's alpha on out-of-fold outputs; keep the best.

    Coordinate ascent from ``prior_alpha`` (tuned without routing): the best threshold, then the best
    alpha with it, then the best threshold again. Ties go to the higher threshold (fewer images
    routed: the component heads are the path that also reads unseen graphemes) and the smaller alpha;
    an alpha that gains less than ``min_gain`` over 0 gives way to 0, as in priors.tune_alpha.
    """
    truth = np.stack([np.asarray(y_true[name]) for name in COMPONENTS], axis=1)
    triples = grapheme_triples()[np.asarray(aux[TOP_INDEX][:, 0], dtype=np.int64)]
    cache: dict[float, np.ndarray] = {}

    def labels_at(alpha: float) -> np.ndarray:
        if alpha not in cache:
            corrected = apply_prior(probabilities, counts, alpha)
            cache[alpha] = np.stack([corrected[name].argmax(axis=1) for name in COMPONENTS], axis=1)
        return cache[alpha]

    def score(mask: np.ndarray, alpha: float, rows: np.ndarray | None = None) -> float:
        predicted = np.where(mask[:, None], triples, labels_at(alpha))
        if rows is None:
            return competition_score_fast(truth, predicted)
        return competition_score_fast(truth[rows], predicted[rows], GROUP_CLASSES) if rows.any() else float("nan")

    def best_threshold(values: np.ndarray, alpha: float) -> float:
        grid = np.concatenate([np.unique(np.quantile(values, _QUANTILES, method="lower")), [np.inf]])
        scored = [(score(values >= t, alpha), t) for t in grid]
        return max(scored)[1]  # ties: the higher threshold

    def best_alpha(mask: np.ndarray) -> float:
        scored = {float(a): score(mask, float(a)) for a in alpha_grid}
        best = max(sorted(scored), key=lambda a: (scored[a], -a))
        return 0.0 if 0.0 in scored and scored[best] - scored[0.0] < min_gain else best

    unseen = np.asarray(unseen, dtype=bool)
    nothing = np.zeros(len(truth), dtype=bool)
    no_routing = score(nothing, prior_alpha)
    candidates = {}
    for name in SCORES:
        values = ood_score(aux, name)
        threshold = best_threshold(values, prior_alpha)
        alpha = best_alpha(values >= threshold)
        if alpha != prior_alpha:
            threshold = best_threshold(values, alpha)
        mask = values >= threshold
        right = (triples[mask] == truth[mask]).all(axis=1)
        candidates[name] = Candidate(
            name, float(threshold), alpha, score(mask, alpha), float(mask[~unseen].mean()),
            float((~mask[unseen]).mean()), float(right.mean()) if right.size else None,
            score(mask, alpha, ~unseen), score(mask, alpha, unseen),
        )
    best = max(candidates.values(), key=lambda c: (c.score, -SCORES.index(c.score_name)))
    return RoutingReport(best, no_routing, candidates, int((~unseen).sum()), int(unseen.sum()), min_gain,
                         score(nothing, prior_alpha, ~unseen), score(nothing, prior_alpha, unseen))
