"""Score a model trained on synthetic data against labelled real handwriting.

    python benchmarks/eval_real_handwriting.py --run runs/<exp> [--folds all|0,1] [--tta N] [--alpha auto|A] \
        --real ../shared/data/real_handwriting_dev [--real OTHER_DIR ...] [--sheet out.png] [--json out.json]
    python benchmarks/eval_real_handwriting.py --checkpoint runs/<exp>/fold0/best.pt --real ...

Each folder holds 137x236 PNGs (dark ink on white) and ``labels.csv`` with the competition's label
columns. The images go through the inference path of ``bengaliai predict`` (the same
``preprocess_batch`` settings as training, read from the checkpoints; fold ensemble, test-time
views and prior correction as asked) and are scored with the competition metric. Never train on
these folders: they measure how far the synthetic data is from real writing. ``--real`` may be
given several times: the ensemble is loaded once and each folder is scored and printed in turn.
``--sheet`` draws the images with their predictions (red where the root is wrong; one sheet per
folder, named ``<sheet>_<folder>.png`` when there are several). ``--json`` writes every figure.

``evaluate`` and ``evaluate_folders`` are the scoring as functions (benchmarks/real_writing_table.py).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, HEIGHT, LABEL_STRINGS, WIDTH
from bengaliai.data.preprocess import PreprocessConfig, preprocess_batch
from bengaliai.evaluation.metric import competition_score
from bengaliai.evaluation.priors import apply_prior
from bengaliai.inference.checkpoints import fold_checkpoints, load_models, training_input
from bengaliai.inference.ensemble import Ensemble, InferenceConfig
from bengaliai.inference.prior import Prior, resolve_prior

log = logging.getLogger("eval_real_handwriting")

VOWEL_SIGNS = LABEL_STRINGS["vowel_diacritic"]
ROOT_KINDS = ("consonant", "conjunct", "vowel")


@dataclass(frozen=True)
class Predictor:
    """A fold ensemble loaded once, with the preprocessing its checkpoints were trained with."""

    ensemble: Ensemble
    preprocess: PreprocessConfig


def load_predictor(checkpoints: Sequence[Path], tta: int = 1) -> Predictor:
    config = InferenceConfig(tta=tta)
    models, device = load_models(list(checkpoints), config)
    return Predictor(Ensemble(models, config, device), PreprocessConfig(**models[0].preprocess))


def predict(predictor: Predictor, images: np.ndarray, prior: Prior) -> dict[str, np.ndarray]:
    """Predicted labels of the fold ensemble, exactly as ``bengaliai predict`` computes them."""
    probabilities = predictor.ensemble.predict(preprocess_batch(images, predictor.preprocess))
    if prior.alpha:
        probabilities = apply_prior(probabilities, prior.counts or {}, prior.alpha)
    return {name: probabilities[name].argmax(1) for name in COMPONENTS}


def read_truth(folder: Path) -> pd.DataFrame:
    """``labels.csv`` of a folder of real writing, image ids as strings."""
    path = Path(folder) / "labels.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: missing (expected image_id and the competition's label columns)")
    return pd.read_csv(path, dtype={"image_id": str}, keep_default_na=False)


def load_images(folder: Path, image_ids: list[str]) -> np.ndarray:
    """The PNGs of ``image_ids`` as a (N, 137, 236) uint8 array in competition polarity."""
    images = np.empty((len(image_ids), HEIGHT, WIDTH), dtype=np.uint8)
    for i, image_id in enumerate(image_ids):
        image = cv2.imread(str(folder / f"{image_id}.png"), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise SystemExit(f"{folder / f'{image_id}.png'}: missing or unreadable")
        if image.shape != (HEIGHT, WIDTH):
            image = cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        images[i] = image
    return images


def root_kind(root: int) -> str:
    """conjunct (a virama joins consonants), vowel (an independent vowel or sign) or consonant."""
    text = LABEL_STRINGS["grapheme_root"][root]
    if "\u09cd" in text:
        return "conjunct"
    return "vowel" if not "\u0995" <= text[0] <= "\u09b9" and text[0] not in "\u09dc\u09dd\u09df" else "consonant"


def vowel_by_sign(true: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, Any]]:
    """For each vowel class in the truth (by class id): its sign, its number of images, the share read right."""
    out = {}
    for label in np.unique(true):
        held = true == label
        out[VOWEL_SIGNS[int(label)]] = {"class": int(label), "n": int(held.sum()),
                                        "accuracy": float((pred[held] == label).mean())}
    return out


def vowel_confusion(true: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, int]]:
    """Counts of true sign -> predicted sign, both in class order; only pairs that occur."""
    out: dict[str, dict[str, int]] = {}
    for t in np.unique(true):
        predicted, counts = np.unique(pred[true == t], return_counts=True)
        out[VOWEL_SIGNS[int(t)]] = {VOWEL_SIGNS[int(p)]: int(c) for p, c in zip(predicted, counts, strict=True)}
    return out


def score_predictions(truth: pd.DataFrame, pred: dict[str, np.ndarray]) -> dict[str, Any]:
    """Every figure of one folder's predictions against its labels (plain values, ready for JSON)."""
    true = {n: truth[n].to_numpy() for n in COMPONENTS}
    pred = {n: np.asarray(pred[n]) for n in COMPONENTS}
    # On a few hundred images many predicted classes never occur in the truth; sklearn's default macro
    # recall counts each as a class of recall 0. The competition's test set holds every class, so the
    # score over the sample's own classes ("classes held", metric.py) is the estimate of what the
    # competition would give this writing; the union figure and plain accuracy are kept beside it.
    union = competition_score(true, pred)
    held = competition_score(true, pred, "true")
    kinds = np.array([root_kind(int(r)) for r in true["grapheme_root"]])
    right = pred["grapheme_root"] == true["grapheme_root"]
    return {
        "n": len(truth),
        "score": union.score,
        "recalls": {n: getattr(union, n) for n in COMPONENTS},
        "held_score": held.score,
        "held_recalls": {n: getattr(held, n) for n in COMPONENTS},
        "accuracy": {n: float((pred[n] == true[n]).mean()) for n in COMPONENTS},
        "root_accuracy_by_kind": {
            kind: {"n": int((kinds == kind).sum()), "accuracy": float(right[kinds == kind].mean())}
            for kind in ROOT_KINDS if (kinds == kind).any()
        },
        "vowel_by_sign": vowel_by_sign(true["vowel_diacritic"], pred["vowel_diacritic"]),
        "vowel_confusion": vowel_confusion(true["vowel_diacritic"], pred["vowel_diacritic"]),
    }


def predict_folder(
    predictor: Predictor, folder: Path, prior: Prior
) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """The labels, the images and the predictions of one folder of real writing."""
    truth = read_truth(folder)
    images = load_images(Path(folder), truth["image_id"].tolist())
    return truth, images, predict(predictor, images, prior)


def evaluate_folders(checkpoints: Sequence[Path], folders: Sequence[Path], tta: int = 1,
                     prior: Prior | None = None) -> list[dict[str, Any]]:
    """``evaluate`` on several folders, loading the ensemble once."""
    prior = prior or Prior()
    predictor = load_predictor(checkpoints, tta)
    results = []
    for folder in folders:
        truth, _, pred = predict_folder(predictor, Path(folder), prior)
        results.append({"folder": str(folder)} | score_predictions(truth, pred))
    return results


def evaluate(checkpoints: Sequence[Path], folder: Path, tta: int = 1, prior: Prior | None = None) -> dict[str, Any]:
    """The scores of a fold ensemble on one folder of labelled real writing (score_predictions' figures).

    Keys: folder, n, score and recalls (over the union of true and predicted classes, as the host
    scored), held_score and held_recalls (over the classes the folder holds), accuracy per component,
    root_accuracy_by_kind, vowel_by_sign (sign -> class, n, accuracy) and vowel_confusion
    (true sign -> predicted sign -> count).
    """
    return evaluate_folders(checkpoints, [folder], tta, prior)[0]


def contact_sheet(images: np.ndarray, truth: pd.DataFrame, pred: dict[str, np.ndarray], out: Path) -> None:
    cols, n = 8, min(len(images), 48)
    rows = (n + cols - 1) // cols
    sheet = np.full((rows * (HEIGHT + 18), cols * WIDTH, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (HEIGHT + 18), c * WIDTH
        sheet[y : y + HEIGHT, x : x + WIDTH] = images[i][..., None]
        labels = [int(pred[name][i]) for name in COMPONENTS]
        ok = labels[0] == truth["grapheme_root"].iloc[i]
        text = f"{labels[0]}/{labels[1]}/{labels[2]} (true {truth['grapheme_root'].iloc[i]})"
        cv2.putText(sheet, text, (x + 4, y + HEIGHT + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 140, 0) if ok else (0, 0, 220), 1)
    cv2.imwrite(str(out), sheet)


def log_result(result: dict[str, Any], model: str, tta: int, alpha: float) -> None:
    """The table this script has always printed for one folder, and root accuracy by kind of root."""
    held, accuracy = result["held_recalls"], result["accuracy"]
    log.info("%d real images from %s", result["n"], result["folder"])
    log.info("| model | tta | alpha | classes held: root | vowel | consonant | score "
             "| union with predicted: score (root) | accuracy root / vowel / consonant |")
    log.info("|---|---|---|---|---|---|---|---|---|")
    log.info(
        "| %s | %d | %g | %.4f | %.4f | %.4f | %.4f | %.4f (%.4f) | %.3f / %.3f / %.3f |",
        model, tta, alpha, *held.values(), result["held_score"], result["score"],
        result["recalls"]["grapheme_root"], *accuracy.values(),
    )
    log.info("root accuracy by kind of root: %s", ", ".join(
        f"{kind} {v['accuracy']:.3f} ({v['n']} images)" for kind, v in result["root_accuracy_by_kind"].items()
    ))
    log.info("vowel accuracy by sign: %s", ", ".join(
        f"{sign} {v['accuracy']:.3f} ({v['n']})" for sign, v in result["vowel_by_sign"].items()
    ))


def sheet_path(sheet: Path, folder: Path, several: bool) -> Path:
    return sheet.with_name(f"{sheet.stem}_{folder.name}{sheet.suffix}") if several else sheet


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="one fold's best.pt")
    source.add_argument("--run", type=Path, help="experiment folder runs/<exp> (with --folds)")
    parser.add_argument("--folds", default="all", help="folds of --run to ensemble (default: all)")
    parser.add_argument("--tta", type=int, default=1, help="test-time views (default: 1 = none)")
    parser.add_argument("--alpha", default="0", help="prior correction: a number, or auto for oof.json's (default: 0)")
    parser.add_argument("--real", type=Path, action="append", required=True,
                        help="folder with PNGs and labels.csv (repeat for several)")
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write every figure of every folder here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    checkpoints = [args.checkpoint] if args.checkpoint else fold_checkpoints(args.run, args.folds)
    experiment = args.run or args.checkpoint.parent.parent
    alpha = None if args.alpha == "auto" else float(args.alpha)
    prior = resolve_prior(experiment, alpha, Path(training_input(checkpoints[0])))
    predictor = load_predictor(checkpoints, args.tta)
    results = []
    for folder in args.real:
        truth, images, pred = predict_folder(predictor, folder, prior)
        result = {"folder": str(folder)} | score_predictions(truth, pred)
        log_result(result, ", ".join(map(str, checkpoints)), args.tta, prior.alpha)
        if args.sheet:
            contact_sheet(images, truth, pred, sheet_path(args.sheet, folder, len(args.real) > 1))
        results.append(result)
    if args.json:
        report = {"checkpoints": [str(p) for p in checkpoints], "tta": args.tta, "alpha": prior.alpha,
                  "folders": results}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        log.info("wrote %s", args.json)
    return results


if __name__ == "__main__":
    main()
