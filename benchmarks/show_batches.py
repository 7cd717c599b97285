"""Draw what the model sees: prepared crops from the cache and the same images augmented.

    python benchmarks/show_batches.py --input input --cache crop128 --out batches.png

Top half: cached images as prepared (inverted: ink white on black, as the model gets them).
Bottom half: the same images after the default training augmentation (affine, grid distortion,
coarse dropout) and one CutMix, so a glance shows whether augmentation is too weak or destroys
the letters.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from bengaliai.core.competition import COMPONENTS
from bengaliai.training.augment import AugmentConfig, build_transform, mix_batch
from bengaliai.training.loader import AugmentedBatches, open_cache


def grid(images: np.ndarray, cols: int) -> np.ndarray:
    n, h, w = images.shape
    rows = (n + cols - 1) // cols
    out = np.full((rows * (h + 2), cols * (w + 2)), 128, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = image
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--cache", default="crop128")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    store = open_cache(args.input, args.cache, "train")
    indices = np.random.default_rng(args.seed).choice(len(store), args.n, replace=False)
    prepared = store.gather(indices)
    labels = np.zeros((len(store), 4), dtype=np.int64)
    config = AugmentConfig(cutmix_p=0.5)
    augmented, _, _ = AugmentedBatches(store, labels, build_transform(config), args.seed)[(0, 0, indices)]
    targets = {name: torch.zeros(args.n, dtype=torch.long) for name in COMPONENTS}
    mixed = mix_batch(augmented.float(), targets, AugmentConfig(cutmix_p=1.0), torch.Generator().manual_seed(args.seed))
    augmented = mixed.images.squeeze(1).clamp(0, 255).byte().numpy()
    sheet = np.vstack([grid(prepared, 8), np.full((6, grid(prepared, 8).shape[1]), 255, np.uint8), grid(augmented, 8)])
    cv2.imwrite(str(args.out), sheet)


if __name__ == "__main__":
    main()
