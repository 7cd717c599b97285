"""Score a model trained on synthetic data against labelled real handwriting.

    python benchmarks/eval_real_handwriting.py --checkpoint runs/<exp>/fold0/best.pt \
        --real ../shared/data/real_handwriting_dev [--sheet out.png]

The folder holds 137x236 PNGs (dark ink on white) and ``labels.csv`` with the competition's label
columns. The images go through the same ``preprocess_batch`` as training (settings read from the
checkpoint) and are scored with the competition metric. Never train on this folder: it measures
how far the synthetic data is from real writing. ``--sheet`` draws the images with their
predictions (red where the root is wrong).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from bengaliai.checkpoint import load_checkpoint
from bengaliai.competition import COMPONENTS, HEIGHT, WIDTH
from bengaliai.config import from_dict
from bengaliai.data import to_model_input
from bengaliai.metric import competition_score
from bengaliai.preprocess import PreprocessConfig, preprocess_batch
from bengaliai.train import TrainConfig

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


@torch.inference_mode()
def predict(checkpoint: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    from bengaliai.model import build_model

    state = load_checkpoint(checkpoint)
    config = from_dict(TrainConfig, state["config"])
    model = build_model(config.model)
    model.load_state_dict(state["weights"])
    model.eval()
    prepared = preprocess_batch(images, PreprocessConfig(**state["preprocess"]))
    x = to_model_input(torch.from_numpy(prepared).unsqueeze(1), config.data, torch.device("cpu"), False)
    logits = model(x)
    return {name: logits[name].argmax(1).numpy() for name in COMPONENTS}


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
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--real", type=Path, required=True, help="folder with PNGs and labels.csv")
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    truth = pd.read_csv(args.real / "labels.csv", dtype={"image_id": str}, keep_default_na=False)
    images = load_images(args.real, truth["image_id"].tolist())
    pred = predict(args.checkpoint, images)
    score = competition_score({n: truth[n].to_numpy() for n in COMPONENTS}, pred)
    # On a few hundred images many predicted classes never occur in the truth; the metric (sklearn's
    # macro recall, as the competition computed it) counts each as a class of recall 0, so plain
    # accuracy is printed beside it to tell "wrong" from "penalised for variety".
    accuracy = {n: float((pred[n] == truth[n].to_numpy()).mean()) for n in COMPONENTS}
    log.info("%d real images from %s", len(truth), args.real)
    log.info("| checkpoint | root | vowel | consonant | score | accuracy root / vowel / consonant |")
    log.info("|---|---|---|---|---|---|")
    log.info(
        "| %s | %.4f | %.4f | %.4f | %.4f | %.3f / %.3f / %.3f |",
        args.checkpoint, score.grapheme_root, score.vowel_diacritic, score.consonant_diacritic, score.score,
        *accuracy.values(),
    )
    if args.sheet:
        contact_sheet(images, truth, pred, args.sheet)


if __name__ == "__main__":
    main()
