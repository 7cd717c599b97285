"""``bengaliai oof``: score an experiment on its out-of-fold predictions and tune the prior correction.

Each image is scored with the probabilities of the fold that validated it as its own (its ``fold``
in train_folds.csv). Unseen graphemes are validated in every fold, so they occur in every fold's
``oof.npz``; they too are taken from their own fold only, so every image counts exactly once, as
it would in one model's cross-validation. Seen and unseen images are also scored apart, each group
over the classes it holds (``metric``'s module docstring says why), and each fold's model on every
held-out image it read, five times its own share: the steadier figure for a single-fold run.

The result, ``runs/<experiment>/oof.json``, also holds the prior-correction ``alpha`` and the
training class counts that prediction applies at test time, the seen/unseen routing tuned on runs
with the auxiliary grapheme head (bengaliai.evaluation.routing: the held-out graphemes play the unseen ones),
and what it covers: the folds, the fingerprints of the train.csv and folds file it was tuned with,
and the fingerprints each fold recorded when it was trained. Every fold used must still match the
current train.csv and folds file (runinfo.check_ensemble_inputs): a fold trained on other folds
would score images it trained on as out of fold; and the folds must agree on runinfo.MODEL_SETTINGS (one
model's cross-validation). Only ``bengaliai oof`` writes oof.json; compute_oof is the same evaluation in memory.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_json
from bengaliai.data.folds import align_folds, read_folds
from bengaliai.data.labels import read_train_labels
from bengaliai.data.runinfo import (
    check_ensemble_inputs,
    describe_differences,
    differing_settings,
    fold_files,
    input_fingerprints,
    read_run_config,
    recorded_inputs,
    run_input,
)
from bengaliai.data.supervision import ALL, per_source
from bengaliai.evaluation.metric import GROUP_CLASSES, Classes, Score, competition_score
from bengaliai.evaluation.oof_report import OOF_JSON, OofReport, edge_warning
from bengaliai.evaluation.plots import plot_per_class_recall
from bengaliai.evaluation.priors import apply_prior, class_counts, tune_alpha
from bengaliai.evaluation.routing import AUX_KEYS, check_aux, tune_routing

log = logging.getLogger(__name__)

OOF_NPZ = "oof.npz"
PER_CLASS_PNG = "per_class_recall.png"
_SHOW = 5


@dataclass(frozen=True)
class _Oof:
    """Out-of-fold probabilities and labels of the images that have them, in train.csv order."""

    fold: np.ndarray
    unseen: np.ndarray
    probabilities: dict[str, np.ndarray]
    y_true: dict[str, np.ndarray]
    n_left_out: int
    aux: dict[str, np.ndarray] | None = None  # routing.AUX_KEYS, when every fold's oof.npz has them
    # Each fold's model on every held-out image it validated (all of them, not only its own fold's share).
    held_out_by_fold: dict[int, tuple[Score, int]] = field(default_factory=dict)


def gather_oof(
    npz_paths: dict[int, Path], labels: pd.DataFrame, folds: pd.DataFrame, train_csv: Path, folds_csv: Path
) -> _Oof:
    """Each image's probabilities from the ``oof.npz`` of its own fold; images of untrained folds are left out.

    Also scores each fold's model on every held-out image of its ``oof.npz`` (``held_out_by_fold``).
    """
    table = align_folds(folds, labels["image_id"], folds_csv)
    row_of = pd.Series(np.arange(len(labels)), index=labels["image_id"].to_numpy())
    own_fold = table["fold"].to_numpy()
    taken_rows, taken_probs, taken_aux = [], [], []
    unseen_all = table["unseen"].to_numpy(dtype=bool)
    held_out_by_fold: dict[int, tuple[Score, int]] = {}
    for fold, path in npz_paths.items():
        ids, probs, aux = _read_npz(path)
        missing = ids[~pd.Index(ids).isin(row_of.index)]  # hashed: np.isin compares string ids pair by pair
        if missing.size:
            shown = ", ".join(missing[:_SHOW]) + (", ..." if missing.size > _SHOW else "")
            raise DataError(path, f"{missing.size} of {ids.size} image ids are not in {train_csv}: {shown}; "
                                  "the fold was trained on other data (pass the input folder it was trained on)")
        rows = row_of.loc[ids].to_numpy()
        own = own_fold[rows] == fold
        held = unseen_all[rows]
        if held.any():
            held_out_by_fold[fold] = (competition_score(
                {name: labels[name].to_numpy()[rows[held]] for name in COMPONENTS},
                {name: probs[name][held].argmax(axis=1) for name in COMPONENTS}, GROUP_CLASSES), int(held.sum()))
        if not own.any():
            log.warning("%s: none of its images has fold %d in %s; were the folds remade?", path, fold, folds_csv)
        taken_rows.append(rows[own])
        taken_probs.append({name: probs[name][own] for name in COMPONENTS})
        taken_aux.append(None if aux is None else {key: aux[key][own] for key in AUX_KEYS})
    rows = np.concatenate(taken_rows)
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    n_left_out = len(labels) - len(rows)
    if n_left_out:
        log.info("%d of %d images of %s have no out-of-fold probabilities (their fold has no %s) and are left out",
                 n_left_out, len(labels), train_csv, OOF_NPZ)
    with_aux = [a is not None for a in taken_aux]
    if any(with_aux) and not all(with_aux):
        log.warning("only fold(s) %s have the auxiliary grapheme head's outputs: routing is not tuned",
                    [k for k, has in zip(npz_paths, with_aux, strict=True) if has])
    aux = None
    if all(with_aux):
        aux = {key: np.concatenate([a[key] for a in taken_aux])[order] for key in AUX_KEYS}  # type: ignore[index]
    return _Oof(
        fold=own_fold[rows].astype(np.int64),
        unseen=table["unseen"].to_numpy(dtype=bool)[rows],
        probabilities={name: np.concatenate([p[name] for p in taken_probs])[order] for name in COMPONENTS},
        y_true={name: labels[name].to_numpy()[rows] for name in COMPONENTS},
        n_left_out=n_left_out,
        aux=aux,
        held_out_by_fold=held_out_by_fold,
    )


def _read_npz(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Image ids, component probabilities and, if the fold has the auxiliary head, its routing arrays."""
    arrays = _load_npz(path)
    absent = [key for key in ("image_id", *COMPONENTS) if key not in arrays]
    if absent:
        raise DataError(path, f"missing array(s) {', '.join(absent)}; found {', '.join(arrays) or 'none'}")
    ids = arrays["image_id"].astype(str)
    for name in COMPONENTS:
        if arrays[name].shape != (len(ids), N_CLASSES[name]):
            raise DataError(path, f"array {name} has shape {arrays[name].shape}, "
                                  f"expected ({len(ids)}, {N_CLASSES[name]})")
    aux = None
    if any(key in arrays for key in AUX_KEYS):
        aux = {key: arrays[key] for key in AUX_KEYS if key in arrays}
        try:
            check_aux(aux, len(ids), "the grapheme head's outputs")
        except BengaliaiError as error:
            raise DataError(path, str(error)) from None
    return ids, {name: arrays[name].astype(np.float32, copy=False) for name in COMPONENTS}, aux


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a fold's oof.npz; a file cut short or damaged is one DataError that says what to do."""
    retrain = f"move {path.parent} aside, then `bengaliai train --fold {path.parent.name.removeprefix('fold')}`"
    damaged = (f"{path.parent.name}'s run is damaged (a copy or write cut short): restore the file from a copy of "
               f"the run, or retrain the fold ({retrain} with the experiment's settings)")
    try:
        size = path.stat().st_size
        if size == 0:
            raise DataError(path, f"an empty file (0 bytes); {damaged}")
        if not zipfile.is_zipfile(path):  # np.load would try it as a pickle and advise allow_pickle
            raise DataError(path, f"not an .npz archive (no zip directory in its {size} bytes); {damaged}")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except OSError as error:
        raise DataError(path, f"cannot read it ({error.strerror or error})") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(path, f"not a readable .npz file ({type(error).__name__}: {error}); {damaged}") from None


def _score(
    oof: _Oof, mask: np.ndarray, probabilities: dict[str, np.ndarray] | None = None, classes: Classes = "union"
) -> Score:
    probabilities = oof.probabilities if probabilities is None else probabilities
    return competition_score(
        {name: oof.y_true[name][mask] for name in COMPONENTS},
        {name: probabilities[name][mask].argmax(axis=1) for name in COMPONENTS},
        classes,
    )


def _subset(oof: _Oof, mask: np.ndarray, probabilities: dict[str, np.ndarray] | None = None) -> Score:
    """The seen or unseen images apart, over the classes they hold (metric's module docstring)."""
    return _score(oof, mask, probabilities, GROUP_CLASSES)


def compute_oof(experiment_dir: Path, input_dir: Path | None = None) -> OofReport:
    """The out-of-fold evaluation of ``runs/<experiment>`` in memory: nothing is written.

    ``input_dir`` replaces the ``data.input`` of the run's config (for data that has moved).
    Raises BengaliaiError when a fold no longer matches train.csv or the folds file.
    """
    return _evaluate(experiment_dir, input_dir)[0]


def evaluate_oof(experiment_dir: Path, input_dir: Path | None = None) -> OofReport:
    """Score ``runs/<experiment>`` out of fold, tune the prior alpha, write oof.json and the per-class plot.

    ``input_dir`` replaces the ``data.input`` of the run's config (for data that has moved).
    """
    report, oof = _evaluate(experiment_dir, input_dir)
    title = f"{report.experiment}: out-of-fold recall per class"
    plot_per_class_recall(oof.probabilities, oof.y_true, report.png_path, title)
    write_json(report.as_json(), report.json_path)
    log.info("%s: out-of-fold score %.4f, %.4f with prior alpha %g",
             experiment_dir, report.score, report.score_with_prior, report.alpha)
    if report.alpha_at_edge:
        log.warning("%s: %s", experiment_dir, edge_warning(report.alpha))
    if report.routing is not None:
        log.info("%s:%s", experiment_dir, report.routing.summary())
    return report


def _evaluate(experiment_dir: Path, input_dir: Path | None) -> tuple[OofReport, _Oof]:
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        raise BengaliaiError(
            f"{experiment_dir} is not a folder; expected runs/<experiment> as written by `bengaliai train`"
        )
    npz_paths = fold_files(experiment_dir, OOF_NPZ)
    if not npz_paths:
        raise BengaliaiError(f"{experiment_dir}: no fold<K>/{OOF_NPZ}; `bengaliai train` writes one per fold "
                             "after its first validated epoch")
    configs = {k: read_run_config(path.parent) for k, path in npz_paths.items()}
    if differing := differing_settings(configs):
        raise BengaliaiError(f"{experiment_dir}: its folds were trained with different settings: "
                             f"{describe_differences(differing)}; an out-of-fold score of them is no one setting's: "
                             "retrain the odd folds with the experiment's settings, or move them (their fold<K> "
                             "folders) into an experiment folder of their own")
    config = configs[min(configs)]
    train_csv, folds_csv = run_input(config, input_dir)
    if not train_csv.is_file():
        raise DataError(train_csv, "file not found; the run's config.yaml names this input folder "
                                   "(pass --input DIR if the data has moved)")
    check_ensemble_inputs([path.parent for path in npz_paths.values()], input_dir)
    labels = read_train_labels(train_csv)
    oof = gather_oof(npz_paths, labels, read_folds(folds_csv), train_csv, folds_csv)
    if len(oof.fold) == 0:
        raise BengaliaiError(f"{experiment_dir}: no image of {folds_csv} belongs to a trained fold "
                             f"({', '.join(map(str, npz_paths))})")
    everything = np.ones(len(oof.fold), dtype=bool)
    overall = _score(oof, everything)
    seen = unseen = None
    if oof.unseen.any():
        seen = _subset(oof, ~oof.unseen) if (~oof.unseen).any() else None
        unseen = _subset(oof, oof.unseen)
    fold_scores = {int(k): _score(oof, oof.fold == k).score for k in np.unique(oof.fold)}
    counts = class_counts(labels)
    alpha, by_alpha = tune_alpha(oof.probabilities, oof.y_true, counts)
    seen_prior = unseen_prior = None
    if seen is not None and unseen is not None and alpha > 0:
        corrected = apply_prior(oof.probabilities, counts, alpha)
        seen_prior, unseen_prior = _subset(oof, ~oof.unseen, corrected), _subset(oof, oof.unseen, corrected)
    routing, routing_note = None, ""
    if oof.aux is None:
        routing_note = "the folds have no auxiliary grapheme head (model.aux_graphemes=true)"
    elif not oof.unseen.any() or oof.unseen.all():
        routing_note = ("the folds hold out no graphemes (bengaliai folds --unseen-graphemes N): "
                        "there are no unseen images to tune the threshold on")
        log.warning("%s: routing not tuned: %s", experiment_dir, routing_note)
    else:
        routing = tune_routing(oof.probabilities, oof.aux, oof.y_true, oof.unseen, counts, alpha)
    report = OofReport(
        experiment=experiment_dir.name,
        folds=tuple(npz_paths),
        n_images=len(oof.fold),
        n_left_out=oof.n_left_out,
        score=overall.score,
        recalls={name: getattr(overall, name) for name in COMPONENTS},
        seen=seen,
        unseen=unseen,
        n_unseen=int(oof.unseen.sum()),
        fold_scores=fold_scores,
        alpha=alpha,
        scores_by_alpha=by_alpha,
        class_counts={name: [int(c) for c in counts[name]] for name in COMPONENTS},
        input_dir=train_csv.parent,
        json_path=experiment_dir / OOF_JSON,
        png_path=experiment_dir / PER_CLASS_PNG,
        inputs=input_fingerprints(config, input_dir),
        fold_inputs={k: recorded_inputs(path.parent) for k, path in npz_paths.items()},
        extra_sources=_extra_sources(config.get("data", {})),
        held_out_in_extra=sum(int(source.get("held_out_images", 0))
                              for source in (config.get("resolved") or {}).get("extra_sources", []) or []),
        routing=routing,
        routing_note=routing_note,
        seen_with_prior=seen_prior,
        unseen_with_prior=unseen_prior,
        held_out_by_fold=oof.held_out_by_fold,
    )
    return report, oof


def _extra_sources(data: dict[str, Any]) -> tuple[str, ...]:
    """The run's extra sources as the summary names them, with the heads they supervise where not all."""
    sources = [str(e) for e in data.get("extra", []) or []]
    heads = per_source(data.get("extra_heads") or [], len(sources))
    return tuple(s if h == ALL else f"{s} (supervises {h})" for s, h in zip(sources, heads, strict=False))
