"""The out-of-fold report: what ``bengaliai oof`` writes to ``oof.json`` and prints, and how it is read back.

``oof.json`` holds the score (overall, per component, seen and unseen graphemes, per fold), the
prior correction and the routing that predict and the kernel apply at test time, and the
fingerprints of the inputs it was tuned with, so a report that no longer matches its run is told.
``resolve_routing`` reads the tuned routing back for predict and the kernel.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bengaliai.core.competition import COMPONENTS
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.data.runinfo import file_fingerprint, recorded_inputs
from bengaliai.evaluation.metric import GROUP_CLASSES, Score
from bengaliai.evaluation.routing import Routing, RoutingReport

log = logging.getLogger(__name__)

OOF_JSON = "oof.json"
# A drop of the unseen graphemes' score under the prior correction worth a note in the summary.
UNSEEN_COST = 0.01
# oof.json's "group_classes" is metric.GROUP_CLASSES. Reports written before 2026-12-03 lack the key:
# their groups were scored over the union with the predicted classes.


@dataclass(frozen=True)
class OofReport:
    """The out-of-fold evaluation of one experiment, as written to ``oof.json``."""

    experiment: str
    folds: tuple[int, ...]
    n_images: int
    n_left_out: int
    score: float
    recalls: dict[str, float]
    seen: Score | None  # both None when no image is unseen
    unseen: Score | None
    n_unseen: int
    fold_scores: dict[int, float]
    alpha: float
    scores_by_alpha: dict[float, float]
    class_counts: dict[str, list[int]]
    input_dir: Path
    json_path: Path
    png_path: Path
    # runinfo.input_fingerprints of the files evaluated, and each fold's recorded ones (None: an older run).
    inputs: dict[str, dict[str, str | None]] = field(default_factory=dict)
    fold_inputs: dict[int, dict[str, str | None] | None] = field(default_factory=dict)
    # data.extra of the run: extra training sources (their images are never scored here).
    extra_sources: tuple[str, ...] = ()
    # Images of the extra sources that show graphemes the folds hold out as unseen (train records them).
    held_out_in_extra: int = 0
    # Seen/unseen routing, tuned when every fold has the auxiliary head's outputs and some image is unseen.
    routing: RoutingReport | None = None
    routing_note: str = ""  # why routing was not tuned, if it was not
    # Seen and unseen images scored with the tuned alpha (None: no unseen images or alpha 0).
    seen_with_prior: Score | None = None
    unseen_with_prior: Score | None = None
    # Each fold's model on every held-out image (the held-out graphemes are validated by every fold, so
    # one fold's model reads all of them: about 5x the images of its own fold's share), and their count.
    held_out_by_fold: dict[int, tuple[Score, int]] = field(default_factory=dict)

    @property
    def held_out_mean(self) -> float | None:
        """The mean over folds of each fold's score on every held-out image (None without held-out images)."""
        if not self.held_out_by_fold:
            return None
        return float(sum(score.score for score, _ in self.held_out_by_fold.values()) / len(self.held_out_by_fold))

    @property
    def score_with_prior(self) -> float:
        """The out-of-fold score with the tuned ``alpha`` (the score itself when alpha is 0)."""
        return self.scores_by_alpha[self.alpha]

    @property
    def alpha_at_edge(self) -> bool:
        """Whether a kept correction is the largest alpha of the grid: the best may lie beyond it."""
        return self.alpha > 0 and self.alpha == max(self.scores_by_alpha)

    def as_json(self) -> dict[str, Any]:
        """The content of ``oof.json``; ``prior.alpha`` and ``prior.class_counts`` are read at test time."""
        return {
            "experiment": self.experiment,
            "extra_sources": list(self.extra_sources),
            "held_out_in_extra": self.held_out_in_extra,
            "folds": list(self.folds),
            "n_images": self.n_images,
            "n_left_out": self.n_left_out,
            "score": self.score,
            "recalls": self.recalls,
            "seen": _score_json(self.seen, self.n_images - self.n_unseen),
            "unseen": _score_json(self.unseen, self.n_unseen),
            "group_classes": GROUP_CLASSES,
            "held_out_by_fold": {str(k): _score_json(score, n) for k, (score, n) in self.held_out_by_fold.items()},
            "fold_scores": {str(k): v for k, v in self.fold_scores.items()},
            "prior": {
                "alpha": self.alpha,
                "score": self.score_with_prior,
                "score_without": self.score,
                "scores_by_alpha": {str(a): s for a, s in self.scores_by_alpha.items()},
                "at_grid_edge": self.alpha_at_edge,
                "seen": _score_json(self.seen_with_prior, self.n_images - self.n_unseen),
                "unseen": _score_json(self.unseen_with_prior, self.n_unseen),
                "class_counts": self.class_counts,
            },
            "routing": None if self.routing is None else self.routing.as_json(),
            "routing_note": self.routing_note,
            "input": str(self.input_dir),
            "inputs": self.inputs,
            "fold_inputs": {str(k): v for k, v in self.fold_inputs.items()},
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        short = {name: name.removeprefix("grapheme_").removesuffix("_diacritic") for name in COMPONENTS}
        recalls = ", ".join(f"{short[name]} {value:.4f}" for name, value in self.recalls.items())
        folds = ", ".join(map(str, self.folds))
        head = f"{self.experiment}: out-of-fold score {self.score:.4f} on {self.n_images} images"
        lines = [f"{head} of fold(s) {folds} ({recalls})"]
        if self.extra_sources:
            lines.append(f"  trained with extra sources (not scored): {', '.join(self.extra_sources)}")
        if self.held_out_in_extra and self.unseen is not None:
            lines.append(f"  WARNING: the extra sources show {self.held_out_in_extra} images of the held-out graphemes: "
                         "the unseen figures below are not a held-out measurement (render such a source with "
                         "`bengaliai synth --skip-held-out <main input>`)")
        if self.n_left_out:
            lines.append(f"  {self.n_left_out} images left out: their folds have no oof.npz")
        if self.seen is not None or self.unseen is not None:
            parts = [f"{what} {s.score:.4f} (root {s.grapheme_root:.4f})"
                     for what, s in (("seen", self.seen), ("unseen", self.unseen)) if s is not None]
            lines.append(f"  {', '.join(parts)}; {self.n_unseen} unseen images "
                         "(each group's recall over the classes it holds)")
        if self.held_out_by_fold:
            folds = ", ".join(f"{k} {score.score:.4f} (root {score.grapheme_root:.4f})"
                              for k, (score, _) in self.held_out_by_fold.items())
            n = max(n for _, n in self.held_out_by_fold.values())
            lines.append(f"  every held-out image ({n}) under each fold's model: {folds}"
                         + (f"; mean {self.held_out_mean:.4f}" if len(self.held_out_by_fold) > 1 else ""))
        lines.append("  per fold: " + ", ".join(f"{k} {v:.4f}" for k, v in self.fold_scores.items()))
        lines.append(f"  prior correction: alpha {self.alpha:g} scores {self.score_with_prior:.4f} "
                     f"({self.score_with_prior - self.score:+.4f} over alpha 0)")
        lines.extend(self._prior_by_group())
        if self.alpha_at_edge:
            lines.append(f"  WARNING: {edge_warning(self.alpha)}")
        if self.routing is not None:
            lines.append(self.routing.summary())
        elif self.routing_note:
            lines.append(f"  routing not tuned: {self.routing_note}")
        lines.append(f"  wrote {self.json_path} and {self.png_path}")
        return "\n".join(lines)

    def _prior_by_group(self) -> list[str]:
        """The prior's effect on seen and unseen images apart: it moves decisions towards train.csv's rare
        classes, which may be the wrong way for graphemes train.csv lacks."""
        if self.seen_with_prior is None or self.unseen_with_prior is None or self.seen is None or self.unseen is None:
            return []
        seen, unseen = self.seen_with_prior.score, self.unseen_with_prior.score
        lines = [f"    with it: seen {seen:.4f} ({self.seen.score:.4f} at alpha 0), "
                 f"unseen {unseen:.4f} ({self.unseen.score:.4f} at alpha 0)"]
        if self.unseen.score - unseen > UNSEEN_COST:
            lines.append(f"  NOTE: the prior costs the unseen graphemes {self.unseen.score - unseen:.4f}; a test set "
                         "with graphemes train.csv lacks may prefer a smaller alpha (predict --alpha A)")
        return lines


def edge_warning(alpha: float) -> str:
    return (f"alpha {alpha:g} is the largest of the tuning grid: the best correction may lie beyond it "
            "(widen priors.ALPHA_GRID to find it)")


def _score_json(score: Score | None, n_images: int) -> dict[str, Any] | None:
    if score is None:
        return None
    recalls = {name: getattr(score, name) for name in COMPONENTS}
    return {"score": score.score, "recalls": recalls, "n_images": n_images}


def read_oof_report(experiment_dir: Path) -> dict[str, Any] | None:
    """The parsed ``oof.json`` of an experiment, or None if there is none yet; DataError if it is unreadable."""
    path = Path(experiment_dir) / OOF_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as error:
        raise DataError(path, f"not valid JSON ({error}); run `bengaliai oof --run {path.parent}` again") from None
    if not isinstance(data, dict) or "prior" not in data:
        raise DataError(path, f"not an out-of-fold report; run `bengaliai oof --run {path.parent}` again")
    return data


def report_mismatch(experiment_dir: Path, report: dict[str, Any]) -> str | None:
    """Why an experiment's oof.json no longer matches its inputs, or None if it does (or cannot be told).

    It does not match when the train.csv or folds file it was tuned with have changed since (their
    fingerprints, at the paths it read), or when a fold it covers has been trained again on other
    inputs. Reports written before fingerprints were recorded cannot be told.
    """
    experiment_dir = Path(experiment_dir)
    for key, entry in (report.get("inputs") or {}).items():
        then, path = (entry or {}).get("sha256"), Path(str((entry or {}).get("path", "")))
        if then is not None and path.is_file() and (now := file_fingerprint(path)) != then:
            return f"{path} changed since {OOF_JSON} was written (tuned with {then}, now {now})"
    for fold, then in (report.get("fold_inputs") or {}).items():
        now = recorded_inputs(experiment_dir / f"fold{fold}")
        if then is not None and now is not None and now != then:
            return f"fold{fold} was trained again on other inputs since {OOF_JSON} was written"
    return None


def routing_from_report(report: Mapping[str, Any]) -> tuple[Routing, float] | None:
    """The rule and the component path's alpha that an oof.json tuned, or None where it keeps routing off."""
    tuned = report.get("routing")
    if not tuned or tuned.get("threshold") is None:
        return None
    return Routing(str(tuned["score_name"]), float(tuned["threshold"])), float(tuned["alpha"])


def resolve_routing(
    experiment_dir: Path, mode: str, has_head: bool, folds: Sequence[int]
) -> tuple[Routing, float] | None:
    """The routing rule and component alpha for ``--routing auto`` (None: off), with the reason logged.

    On only where every checkpoint of the ensemble has the grapheme head and the experiment's oof.json
    tuned a threshold that gains out of fold, still matches the run's inputs, and covers every fold of
    the ensemble (``folds``; a subset of the tuned folds is used with a warning, as the prior's alpha).
    """
    if mode not in ("auto", "off"):
        raise BengaliaiError(f"--routing {mode!r}: expected auto or off")
    if mode == "off":
        return None
    experiment_dir = Path(experiment_dir)
    if not has_head:
        log.info("routing off: the checkpoints have no auxiliary grapheme head (model.aux_graphemes=true)")
        return None
    report = read_oof_report(experiment_dir)
    tuned = routing_from_report(report) if report is not None else None
    if report is None or tuned is None:
        why = "no oof.json" if report is None else report.get("routing_note") or "routing did not gain out of fold"
        log.warning("routing off: %s (%s); run `bengaliai oof --run %s` on folds made with --unseen-graphemes",
                    experiment_dir / OOF_JSON, why, experiment_dir)
        return None
    mismatch = report_mismatch(experiment_dir, report)
    covered = report.get("folds")
    if mismatch is not None or (covered is not None and not set(folds) <= set(covered)):
        why = mismatch or f"tuned on folds {sorted(covered or [])}, the ensemble uses folds {sorted(folds)}"
        log.warning("routing off: %s no longer describes the ensemble (%s); run `bengaliai oof --run %s` again",
                    experiment_dir / OOF_JSON, why, experiment_dir)
        return None
    if covered is not None and set(folds) != set(covered):
        log.warning("routing was tuned on folds %s, the ensemble uses only folds %s: using it anyway",
                    sorted(covered), sorted(folds))
    log.info("routing: %s to the grapheme head, component alpha %g, tuned out of fold", tuned[0].describe(), tuned[1])
    return tuned
