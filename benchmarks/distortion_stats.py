"""How strongly the two augmentation paths distort and cut: grid-distortion displacement and dropout area.

    python benchmarks/distortion_stats.py [--n 256] [--size 128] [--seed 0] [--source render|strokes]

Compares albumentations (`build_transform`, one image at a time, `augment.where=loader`) with
`DeviceAugment` (`augment.where=device`) on the same prepared crops: rendered graphemes as
`bengaliai synth` draws them, cropped as `prepare` does (`augment_sheet.rendered_images`), or with
``--source strokes`` (or without raqm) random lines and rings. Each transform is measured alone, on
every image (p=1), with the default `AugmentConfig` strengths otherwise:

- distortion displacement: grid distortion only (`distort_p=1`, affine and dropout off). Two extra
  channels hold each pixel's own x and y; the transform resamples them with the image (bilinear,
  exact on a linear ramp), so after it each output pixel holds the position it was read from. The
  displacement is the distance from there to the pixel itself, in pixels, averaged over the whole
  frame ("all pixels"), as the mean of |dx| and |dy| over it ("per axis"), and over the output's ink
  (> 0.5 of full ink, "at ink"). A channel of ones marks the pixels read (even in part) from outside
  the image, filled with 0: they hold no position, are left out of the three means, and their share
  of the frame is its own column;
- zeroed area: coarse dropout only (`dropout_p=1`). An extra channel of ones shows the holes: the
  share of the frame set to 0, and the share of the image's ink that falls in a hole.

Each figure is the mean over the images; the spread is the standard deviation between images. These
are statistics of random draws, not timings: a busy machine does not change them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import sys

import numpy as np
import torch
from augment_sheet import rendered_images, stroke_images

from bengaliai.core.errors import BengaliaiError
from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.augment_device import DeviceAugment

log = logging.getLogger(__name__)
INK = 0.5


def with_channels(images: np.ndarray, extra: list[np.ndarray]) -> np.ndarray:
    """float32 (n, h, w, 1 + k): the images in [0, 1] and ``k`` per-pixel planes shared by every image."""
    planes = [images.astype(np.float32) / 255, *(np.broadcast_to(p, images.shape).astype(np.float32) for p in extra)]
    return np.stack(planes, axis=-1)


def albumentations_path(stack: np.ndarray, config: AugmentConfig) -> np.ndarray:
    transform = build_transform(config)
    assert transform is not None
    return np.stack([transform(image=image)["image"] for image in stack])


def device_path(stack: np.ndarray, config: AugmentConfig, seed: int) -> np.ndarray:
    batch = torch.from_numpy(np.ascontiguousarray(stack.transpose(0, 3, 1, 2)))
    out = DeviceAugment(config)(batch, torch.Generator().manual_seed(seed))
    return out.numpy().transpose(0, 2, 3, 1)


def displacement(
    out: np.ndarray, xs: np.ndarray, ys: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per image: mean displacement in pixels over the frame, per axis, and over the output's ink
    pixels, all where the whole read was inside the image; and the share of the frame read from outside."""
    dx, dy = out[..., 1] * size - xs, out[..., 2] * size - ys
    moved, per_axis = np.hypot(dx, dy), (np.abs(dx) + np.abs(dy)) / 2
    inside = out[..., 3] > 1 - 1e-4
    ink = inside & (out[..., 0] > INK)
    frame = np.array([m[k].mean() for m, k in zip(moved, inside, strict=True)])
    axis = np.array([m[k].mean() for m, k in zip(per_axis, inside, strict=True)])
    at_ink = np.array([m[k].mean() if k.any() else np.nan for m, k in zip(moved, ink, strict=True)])
    return frame, axis, at_ink, 1 - inside.mean(axis=(1, 2))


def zeroed(out: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: share of the frame in a hole, and share of the ink (> 0.5) that falls in one."""
    hole = out[..., 1] < 0.5
    ink = images.astype(np.float32) / 255 > INK
    return hole.mean(axis=(1, 2)), (hole & ink).sum(axis=(1, 2)) / np.maximum(ink.sum(axis=(1, 2)), 1)


def spread(values: np.ndarray, digits: int = 2) -> str:
    """Mean ± standard deviation over the images (images without ink left out)."""
    return f"{np.nanmean(values):.{digits}f} ± {np.nanstd(values):.{digits}f}"


def load(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    if args.source == "render":
        try:
            return rendered_images(args.n, args.size, args.seed), "rendered graphemes"
        except BengaliaiError as error:
            log.warning("cannot render (%s): drawing strokes instead", error)
    return stroke_images(args.n, args.size, args.seed), "strokes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="images")
    parser.add_argument("--size", type=int, default=128, help="side of the prepared crops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--source", choices=("render", "strokes"), default="render")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    images, source = load(args)
    size = args.size
    centres = (np.arange(size, dtype=np.float32) + 0.5)[None, :].repeat(size, axis=0)  # x of each pixel centre
    xs, ys = centres, centres.T
    base = AugmentConfig()
    bend = dataclasses.replace(base, affine_p=0.0, distort_p=1.0, dropout_p=0.0)
    cut = dataclasses.replace(base, affine_p=0.0, distort_p=0.0, dropout_p=1.0)
    one = np.ones((size, size), np.float32)
    coords = with_channels(images, [xs / size, ys / size, one])
    ones = with_channels(images, [one])
    rows = []
    for name, run in (
        ("albumentations, per image (`augment.where=loader`)", lambda s, c: albumentations_path(s, c)),
        ("`DeviceAugment`, one batch (`augment.where=device`)", lambda s, c: device_path(s, c, args.seed)),
    ):
        moved, axis, at_ink, outside = displacement(run(coords, bend), xs, ys, size)
        area, ink_cut = zeroed(run(ones, cut), images)
        rows.append((name, moved, axis, at_ink, outside, area, ink_cut))

    print(f"# distortion_stats, {dt.date.today()}, torch {torch.__version__}")
    print(f"command: python benchmarks/distortion_stats.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"{args.n} {source}, {size}x{size}, default AugmentConfig strengths, each transform alone with p=1\n")
    print(
        "| path | distortion displacement, all pixels (px) | per axis (px) | at ink (px) "
        "| read from outside (% of frame) | zeroed area (% of frame) | ink zeroed (%) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, moved, axis, at_ink, outside, area, ink_cut in rows:
        print(
            f"| {name} | {spread(moved)} | {spread(axis)} | {spread(at_ink)} | {spread(100 * outside, 1)} "
            f"| {spread(100 * area, 1)} | {spread(100 * ink_cut, 1)} |"
        )


if __name__ == "__main__":
    main()
