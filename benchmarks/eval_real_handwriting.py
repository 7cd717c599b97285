"""Score a model trained on synthetic data against labelled real handwriting.

    python benchmarks/eval_real_handwriting.py --run runs/<exp> [--folds all|0,1] [--tta N] [--alpha auto|A] \
        --real ../shared/data/real_handwriting_dev [--sheet out.png]
    python benchmarks/eval_real_handwriting.py --checkpoint runs/<exp>/fold0/best.pt --real ...

The folder holds 137x236 PNGs (dark ink on white) and ``labels.csv`` with the competition's label
columns. The images go through the inference path of ``bengaliai predict`` (the same
``preprocess_batch`` settings as training, read from the checkpoints; fold ensemble, test-time
views and prior correction as asked) and are scored with the competition metric. Never train on
this folder: it measures how far the synthetic data is from real writing. ``--sheet`` draws the
images with their predictions (red where the root is wrong).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

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


def predict(checkpoints: list[Path], images: np.ndarray, tta: int, prior: Prior) -> dict[str, np.ndarray]:
    """Predicted labels of the fold ensemble, exactly as ``bengaliai predict`` computes them."""
    config = InferenceConfig(tta=tta)
    models, device = load_models(checkpoints, config)
    prepared = preprocess_batch(images, PreprocessConfig(**models[0].preprocess))
    probabilities = Ensemble(models, config, device).predict(prepared)
    if prior.alpha:
        probabilities = apply_prior(probabilities, prior.counts or {}, prior.alpha)
    return {name: probabilities[name].argmax(1) for name in COMPONENTS}


def root_kind(root: int) -> str:
    """conjunct (a virama joins consonants), vowel (an independent vowel or sign) or consonant."""
    text = LABEL_STRINGS["grapheme_root"][root]
    if "\u09cd" in text:
        return "conjunct"
    return "vowel" if not "\u0995" <= text[0] <= "\u09b9" and text[0] not in "\u09dc\u09dd\u09df" else "consonant"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="one fold's best.pt")
    source.add_argument("--run", type=Path, help="experiment folder runs/<exp> (with --folds)")
    parser.add_argument("--folds", default="all", help="folds of --run to ensemble (default: all)")
    parser.add_argument("--tta", type=int, default=1, help="test-time views (default: 1 = none)")
    parser.add_argument("--alpha", default="0", help="prior correction: a number, or auto for oof.json's (default: 0)")
    parser.add_argument("--real", type=Path, required=True, help="folder with PNGs and labels.csv")
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()
    checkpoints = [args.checkpoint] if args.checkpoint else fold_checkpoints(args.run, args.folds)
    experiment = args.run or args.checkpoint.parent.parent
    alpha = None if args.alpha == "auto" else float(args.alpha)
    prior = resolve_prior(experiment, alpha, Path(training_input(checkpoints[0])))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    truth = pd.read_csv(args.real / "labels.csv", dtype={"image_id": str}, keep_default_na=False)
    images = load_images(args.real, truth["image_id"].tolist())
    pred = predict(checkpoints, images, args.tta, prior)
    true = {n: truth[n].to_numpy() for n in COMPONENTS}
    score = competition_score(true, pred)
    # On a few hundred images many predicted classes never occur in the truth; sklearn's default macro
    # recall counts each as a class of recall 0. The competition's test set holds every class, so the
    # score over the sample's own classes ("classes held", metric.py) is the estimate of what the
    # competition would give this writing; the union figure and plain accuracy are printed beside it.
    held = competition_score(true, pred, "true")
    accuracy = {n: float((pred[n] == true[n]).mean()) for n in COMPONENTS}
    log.info("%d real images from %s", len(truth), args.real)
    log.info("| model | tta | alpha | classes held: root | vowel | consonant | score "
             "| union with predicted: score (root) | accuracy root / vowel / consonant |")
    log.info("|---|---|---|---|---|---|---|---|---|")
    log.info(
        "| %s | %d | %g | %.4f | %.4f | %.4f | %.4f | %.4f (%.4f) | %.3f / %.3f / %.3f |",
        ", ".join(map(str, checkpoints)), args.tta, prior.alpha, held.grapheme_root, held.vowel_diacritic,
        held.consonant_diacritic, held.score, score.score, score.grapheme_root, *accuracy.values(),
    )
    kinds = truth["grapheme_root"].map(root_kind).to_numpy()
    right = pred["grapheme_root"] == truth["grapheme_root"].to_numpy()
    log.info("root accuracy by kind of root: %s", ", ".join(
        f"{kind} {right[kinds == kind].mean():.3f} ({int((kinds == kind).sum())} images)"
        for kind in ("consonant", "conjunct", "vowel") if (kinds == kind).any()
    ))
    if args.sheet:
        contact_sheet(images, truth, pred, args.sheet)


if __name__ == "__main__":
    main()
