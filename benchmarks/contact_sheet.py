"""A contact sheet of synthetic grapheme images, optionally beside real ones, to judge realism by eye.

Usage: python benchmarks/contact_sheet.py --out sheet.png [--real DIR] [--n 48] [--seed 0] [--set KEY=VALUE ...]
The synthetic images are drawn exactly as ``bengaliai synth`` draws training images (same
per-image generators, same ``--set`` render settings, e.g. ``--set pen_p=1``); real images are any
137x236 grayscale PNGs found in DIR.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from bengaliai.core.competition import HEIGHT, WIDTH, render_text
from bengaliai.core.config import load_config
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.sampling import TRAIN_CODE, image_rng, sample_train

log = logging.getLogger(__name__)
_COLUMNS = 6
_GAP = 4


def grid(images: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile images row by row with a mid-grey gap between them."""
    rows = -(-len(images) // columns)
    sheet = np.full((rows * (HEIGHT + _GAP), columns * (WIDTH + _GAP)), 128, dtype=np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = r * (HEIGHT + _GAP), col * (WIDTH + _GAP)
        sheet[top : top + HEIGHT, left : left + WIDTH] = image
    return sheet


def synthetic_images(n: int, seed: int, config: RenderConfig) -> list[np.ndarray]:
    """The first ``n`` training images of ``bengaliai synth --seed SEED`` with these render settings."""
    renderer = Renderer(config)
    plan = sample_train(n, seed)
    return [renderer.render(render_text(g), image_rng(seed, TRAIN_CODE, i)) for i, g in enumerate(plan)]


def real_images(folder: Path, n: int) -> list[np.ndarray]:
    """Up to ``n`` real images from a folder of PNGs, resized to the competition shape if needed."""
    images = []
    for path in sorted(folder.glob("*.png"))[:n]:
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image.shape != (HEIGHT, WIDTH):
            image = cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        images.append(image)
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--real", type=Path, help="folder of real 137x236 PNGs to show below the synthetic ones")
    parser.add_argument("--n", type=int, default=48, help="synthetic images (default: 48)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="render setting, as for synth")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config(RenderConfig, None, args.set)
    parts = [grid(synthetic_images(args.n, args.seed, config), _COLUMNS)]
    if args.real is not None:
        real = real_images(args.real, 2 * _COLUMNS)
        parts += [np.zeros((3 * _GAP, parts[0].shape[1]), dtype=np.uint8), grid(real, _COLUMNS)]
    cv2.imwrite(str(args.out), np.vstack(parts))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
