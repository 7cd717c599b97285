"""Hold synthetic images against real ones by numbers: ink aspect ratio and relative stroke width.

    python benchmarks/compare_shapes.py --real ../shared/data/real_handwriting_dev [--set aspect_log_mean=0]

For every real 137x236 PNG in DIR the same grapheme is rendered as ``bengaliai synth`` would (same
renderer, same ``--set`` render settings) when DIR has a ``labels.csv`` with the competition's label
columns and ``grapheme``; without labels, synthetic images of the training mix are compared. Per
image: the ink's bounding box (width / height) and the stroke width (twice the distance to the
background along the centre line) relative to the ink height. Prints the medians and the mean log
aspect of both sides: the renderer's ``aspect_log_mean`` moves the synthetic one one to one.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from bengaliai.core.competition import Grapheme, render_text
from bengaliai.core.config import load_config
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.sampling import TRAIN_CODE, image_rng, sample_train
from bengaliai.synth.strokes import thin

log = logging.getLogger("compare_shapes")


def shape_stats(image: np.ndarray) -> tuple[float, float]:
    """(ink width / ink height, stroke width / ink height) of a dark-ink-on-light image."""
    ink = (image < 128).astype(np.uint8)
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return float("nan"), float("nan")
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    distance = cv2.distanceTransform(ink, cv2.DIST_L2, 5)
    stroke = 2.0 * float(np.median(distance[thin(ink) == 1]))
    return width / height, stroke / height


def summary(name: str, stats: np.ndarray) -> str:
    aspect, stroke = stats[:, 0], stats[:, 1]
    return (
        f"| {name} | {len(stats)} | {np.nanmedian(aspect):.3f} | {np.nanmean(np.log(aspect)):+.3f} | "
        f"{np.nanmedian(stroke):.4f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, required=True, help="folder of real 137x236 PNGs (labels.csv optional)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="render setting, as for synth")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = sorted(args.real.glob("*.png"))
    if not paths:
        raise SystemExit(f"{args.real}: no PNG files")
    real = np.array([shape_stats(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)) for path in paths])
    renderer = Renderer(load_config(RenderConfig, None, args.set))
    labels_csv = args.real / "labels.csv"
    if labels_csv.exists():
        labels = pd.read_csv(labels_csv).set_index("image_id")
        rows = [labels.loc[path.stem] for path in paths]
        columns = ["grapheme", "grapheme_root", "vowel_diacritic", "consonant_diacritic"]
        graphemes = [Grapheme(*(row[c] for c in columns)) for row in rows]
        what = "the same graphemes"
    else:
        graphemes = sample_train(max(len(paths), 500), args.seed)
        what = "the training mix"
    drawn = [renderer.render(render_text(g), image_rng(args.seed, TRAIN_CODE, i)) for i, g in enumerate(graphemes)]
    synthetic = np.array([shape_stats(image) for image in drawn])
    print(f"real: {args.real}; synthetic: {what}, render settings {args.set or 'default'}")
    print("| images | n | median width / height | mean log(width / height) | median stroke / height |")
    print("|---|---|---|---|---|")
    print(summary("real", real))
    print(summary("synthetic", synthetic))


if __name__ == "__main__":
    main()
