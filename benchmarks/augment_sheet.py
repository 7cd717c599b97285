"""Side by side: the same prepared crops augmented by albumentations (loader) and by the device path.

    python benchmarks/augment_sheet.py --out augment_sheet.png [--input DIR --cache crop128]
        [--source render|strokes] [--n 24] [--seed 0] [--set KEY=VALUE ...]

Three blocks, top to bottom: the prepared images (ink white on black, as the model gets them),
albumentations' `build_transform` on each uint8 image, and `DeviceAugment` on the float batch. The
draws differ (two random streams), so compare strength and kind of distortion, not single images.
Without ``--input`` the images are drawn here: rendered graphemes (`bengaliai.synth.render`, then the
crop of `prepare`) or, with ``--source strokes`` or without raqm, random lines and rings.
``--set`` overrides `AugmentConfig` for both paths, e.g. ``--set distort_p=1``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from bengaliai.core.config import load_config
from bengaliai.core.errors import BengaliaiError
from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.augment_device import DeviceAugment

log = logging.getLogger(__name__)
_COLUMNS = 8
_GAP = 2
_BAND = 10


def stroke_images(n: int, size: int, seed: int) -> np.ndarray:
    """uint8 (n, size, size): a few anti-aliased white lines and a ring on black."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    for image in images:
        for _ in range(int(rng.integers(2, 5))):
            x0, y0, x1, y1 = (int(v) for v in rng.integers(size // 6, 5 * size // 6, 4))
            cv2.line(image, (x0, y0), (x1, y1), 255, max(2, size // int(rng.integers(16, 40))), cv2.LINE_AA)
        cx, cy = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        radius = int(rng.integers(size // 10, size // 4))
        cv2.circle(image, (cx, cy), radius, 255, max(2, size // int(rng.integers(16, 40))), cv2.LINE_AA)
    return images


def rendered_images(n: int, size: int, seed: int) -> np.ndarray:
    """uint8 (n, size, size): synthetic graphemes as `bengaliai synth` draws them, cropped as `prepare` does."""
    from bengaliai.core.competition import render_text
    from bengaliai.data.preprocess import PreprocessConfig, preprocess_batch
    from bengaliai.synth.render import RenderConfig, Renderer, require_raqm
    from bengaliai.synth.sampling import TRAIN_CODE, image_rng, sample_train

    require_raqm()
    renderer = Renderer(RenderConfig())
    plan = sample_train(n, seed)
    raw = np.stack([renderer.render(render_text(g), image_rng(seed, TRAIN_CODE, i)) for i, g in enumerate(plan)])
    return preprocess_batch(raw, PreprocessConfig(size=size))


def grid(images: np.ndarray, columns: int = _COLUMNS) -> np.ndarray:
    """Tile (n, h, w) uint8 images row by row with a mid-grey gap."""
    n, h, w = images.shape
    rows = -(-n // columns)
    sheet = np.full((rows * (h + _GAP), columns * (w + _GAP)), 128, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + _GAP) : r * (h + _GAP) + h, c * (w + _GAP) : c * (w + _GAP) + w] = image
    return sheet


def augment_both(images: np.ndarray, config: AugmentConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(albumentations, device) augmentations of uint8 (n, h, w) images, both as uint8."""
    transform = build_transform(config)
    loader = images if transform is None else np.stack([transform(image=image)["image"] for image in images])
    batch = torch.from_numpy(images).float().div(255)[:, None]
    device = DeviceAugment(config)(batch, torch.Generator().manual_seed(seed))
    return loader, device[:, 0].mul(255).round().clamp(0, 255).byte().numpy()


def load_images(args: argparse.Namespace) -> np.ndarray:
    if args.input is not None:
        from bengaliai.training.loader import open_cache

        store = open_cache(args.input, args.cache, "train")
        return store.gather(np.sort(np.random.default_rng(args.seed).choice(len(store), args.n, replace=False)))
    if args.source == "render":
        try:
            return rendered_images(args.n, args.size, args.seed)
        except BengaliaiError as error:
            log.warning("cannot render (%s): drawing strokes instead", error)
    return stroke_images(args.n, args.size, args.seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--input", type=Path, help="data folder with a prepared cache (default: draw images here)")
    parser.add_argument("--cache", default="crop128")
    parser.add_argument("--source", choices=("render", "strokes"), default="render")
    parser.add_argument("--size", type=int, default=128, help="side of drawn images")
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="AugmentConfig override")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_config(AugmentConfig, None, args.set)
    images = load_images(args)
    loader, device = augment_both(images, config, args.seed)
    blocks = [grid(images), grid(loader), grid(device)]
    band = np.full((_BAND, blocks[0].shape[1]), 255, dtype=np.uint8)
    cv2.imwrite(str(args.out), np.vstack([blocks[0], band, blocks[1], band, blocks[2]]))
    log.info("wrote %s: prepared / albumentations / device, %s", args.out, config)


if __name__ == "__main__":
    main()
