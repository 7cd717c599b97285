"""The held-out graphemes of a run scored two ways: over the classes they hold, and as sklearn's default does.

    python benchmarks/held_out_scores.py --run runs/<exp> [--input DIR]

For each fold with an ``oof.npz``, the images of the graphemes the folds hold out (``folds
--unseen-graphemes N``) are scored twice, on the fold's own share of them (what ``bengaliai oof``
reports as "unseen") and on every held-out image that fold's model read:

- ``classes held``: recall averaged over the classes the held-out images hold (``metric.py``,
  ``classes="true"``), what ``bengaliai oof`` reports since 2026-12-03: a misread image costs its
  own class, as it would in a test set where every class occurs;
- ``union``: sklearn's default labels, every class in truth or prediction, so each class a held-out
  image is misread as enters at recall 0. The unseen figures of BENCHMARKS.md before 2026-12-03.

Plain accuracy is printed beside them. The union figure falls as the sample grows (more distinct
misreads) while the other two do not: the table shows how much of a low union figure is the
variety of the mistakes rather than their number.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS
from bengaliai.data.folds import align_folds, read_folds
from bengaliai.data.labels import read_train_labels
from bengaliai.data.runinfo import fold_files, read_run_config, run_input
from bengaliai.evaluation.metric import competition_score

log = logging.getLogger("held_out_scores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="experiment folder runs/<exp>")
    parser.add_argument("--input", type=Path, default=None, help="its input folder (default: the run's data.input)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    npz_paths = fold_files(args.run, "oof.npz")
    if not npz_paths:
        raise SystemExit(f"{args.run}: no fold*/oof.npz")
    train_csv, folds_csv = run_input(read_run_config(npz_paths[min(npz_paths)].parent), args.input)
    labels = read_train_labels(train_csv)
    table = align_folds(read_folds(folds_csv), labels["image_id"], folds_csv)
    by_id = pd.Series(np.arange(len(labels)), index=labels["image_id"].to_numpy())
    log.info("| fold | images | classes held: score (root / vowel / consonant) | union: score (root) "
             "| accuracy root / vowel / consonant |")
    log.info("|---|---|---|---|---|")
    for fold, path in npz_paths.items():
        with np.load(path, allow_pickle=False) as data:
            rows = by_id.loc[data["image_id"].astype(str)].to_numpy()
            predicted = {name: data[name].argmax(axis=1) for name in COMPONENTS}
        held = table["unseen"].to_numpy(dtype=bool)[rows]
        own = held & (table["fold"].to_numpy()[rows] == fold)
        for what, mask in ((f"{fold}, own share", own), (f"{fold}, every held-out image", held)):
            if not mask.any():
                continue
            truth = {name: labels[name].to_numpy()[rows[mask]] for name in COMPONENTS}
            guess = {name: predicted[name][mask] for name in COMPONENTS}
            held_score, union = competition_score(truth, guess, "true"), competition_score(truth, guess)
            accuracy = [float((truth[name] == guess[name]).mean()) for name in COMPONENTS]
            log.info("| %s | %d | %.4f (%.3f / %.3f / %.3f) | %.4f (%.3f) | %.3f / %.3f / %.3f |",
                     what, int(mask.sum()), held_score.score, held_score.grapheme_root, held_score.vowel_diacritic,
                     held_score.consonant_diacritic, union.score, union.grapheme_root, *accuracy)


if __name__ == "__main__":
    main()
