"""The prior correction an ensemble applies: the tuned or an explicit alpha, and the training class counts.

``bengaliai predict`` and ``bengaliai kernel`` resolve it the same way (``resolve_prior``), the
kernel when it is built, so the two submissions are corrected alike. The correction itself,
``p / freq**alpha``, is bengaliai.evaluation.priors.apply_prior.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bengaliai.core.competition import TRAIN_CSV
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.labels import read_train_labels
from bengaliai.data.runinfo import fold_files
from bengaliai.evaluation.oof_report import OOF_JSON, read_oof_report, report_mismatch
from bengaliai.evaluation.priors import class_counts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prior:
    """The prior correction to apply: ``alpha`` (0: none) and the training class counts."""

    alpha: float = 0.0
    counts: Mapping[str, Sequence[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        counts = None if self.counts is None else {k: [int(c) for c in v] for k, v in self.counts.items()}
        return {"alpha": self.alpha, "class_counts": counts}


def resolve_prior(
    experiment_dir: Path, alpha: float | None, train_dir: Path | None, checkpoints: Sequence[Path] | None = None,
    routed: bool = False,
) -> Prior:
    """The prior correction for ``alpha`` (None: the one ``bengaliai oof`` tuned, else none).

    ``routed``: the ensemble routes (bengaliai.evaluation.routing), so ``alpha`` None takes the alpha tuned
    together with the routing for the component path rather than the one tuned without it.

    ``checkpoints`` are the ensemble's (fold_checkpoints; default: every trained fold). The tuned
    alpha is used only where it describes them: when oof.json's train.csv, folds file and folds'
    fingerprints still match, and every fold of the ensemble is one the alpha was tuned on. The
    same folds: used. A subset of them (e.g. ``--folds 0`` of a 5-fold run): used, with a warning
    naming both fold lists. Any other fold, or inputs changed since: refused, saying to run
    ``bengaliai oof`` again or to pass ``--alpha``. Without oof.json: no correction, with a warning.

    Class counts come from the experiment's oof.json (written by ``bengaliai oof``) or, for an
    explicit alpha without an up-to-date one, from ``train_dir/train.csv`` (the labels the folds
    trained on).
    """
    experiment_dir = Path(experiment_dir)
    report = read_oof_report(experiment_dir)
    mismatch = report_mismatch(experiment_dir, report) if report is not None else None
    if alpha is None:
        if report is None:
            log.warning(
                "%s has no oof.json: predicting without prior correction; run `bengaliai oof --run %s` to tune it",
                experiment_dir, experiment_dir,
            )
            return Prior()
        redo = f"run `bengaliai oof --run {experiment_dir}` again, or pass --alpha explicitly"
        if mismatch is not None:
            raise BengaliaiError(
                f"--alpha auto: {experiment_dir / OOF_JSON} no longer matches the run: {mismatch}; {redo}"
            )
        paths = checkpoints if checkpoints is not None else fold_files(experiment_dir, "best.pt").values()
        chosen = sorted(int(Path(path).parent.name.removeprefix("fold")) for path in paths)
        tuned = report.get("folds")
        if tuned is None:
            log.warning("%s does not say which folds its alpha was tuned on; using it for folds %s",
                        experiment_dir / OOF_JSON, chosen)
        elif not set(chosen) <= set(tuned):
            raise BengaliaiError(
                f"--alpha auto: {experiment_dir / OOF_JSON} was tuned on folds {sorted(tuned)}, but the ensemble "
                f"uses folds {chosen} (fold(s) {sorted(set(chosen) - set(tuned))} unseen by the tuning); {redo}"
            )
        elif set(chosen) != set(tuned):
            log.warning("prior alpha was tuned on folds %s, the ensemble uses only folds %s: using it anyway",
                        sorted(tuned), chosen)
        tuned_alpha = float(report["routing"]["alpha"] if routed else report["prior"]["alpha"])
        log.info("prior correction: alpha %g, tuned out of fold%s", tuned_alpha, " with routing" * routed)
        return Prior(tuned_alpha, report["prior"]["class_counts"])
    if alpha == 0:
        return Prior()
    if report is not None and mismatch is None:
        return Prior(alpha, report["prior"]["class_counts"])
    if train_dir is None or not (Path(train_dir) / TRAIN_CSV).exists():
        raise BengaliaiError(
            f"--alpha {alpha} needs the training class counts: run `bengaliai oof --run {experiment_dir}` first"
        )
    if mismatch is not None:
        log.warning("%s is out of date (%s): class counts read from %s instead",
                    experiment_dir / OOF_JSON, mismatch, Path(train_dir) / TRAIN_CSV)
    return Prior(alpha, class_counts(read_train_labels(Path(train_dir) / TRAIN_CSV)))
