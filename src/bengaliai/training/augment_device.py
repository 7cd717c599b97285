"""Per-image training augmentation for a whole float batch on the device, as albumentations does it per image.

The loader workers' albumentations path (`augment.build_transform`) tops out near 3.4k images/s
per core; this module does the same three transforms for a batch in a few tensor ops where the
model lives. Affine (scale, translation, rotation, shear) and grid distortion are composed into
one sampling grid per batch, so every image is resampled once (bilinear, zeros outside), and coarse
dropout is a broadcast mask. The draws follow `AugmentConfig` with albumentations' ranges and
probabilities, so both paths augment with the same strength.

Input: a float batch (B, C, H, W) whose background is 0, i.e. ink high on 0 *before* the
mean/std normalisation (e.g. ``uint8 / 255``): the warp fills with 0 and dropout writes 0,
so 0 must mean "no ink". All draws come from a `torch.Generator` that the caller seeds per
(seed, epoch, batch, rank) with `batch_seed`; nothing reads a tensor value back to the host, so on a
GPU the whole call is queued asynchronously.

Differences from albumentations, on purpose: grid distortion splits each axis into ``num_steps``
equal cells (albumentations adds a short leftover cell and stretches every cell by one pixel), and
resampling is bilinear on the float image instead of cv2 on uint8.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bengaliai.training.augment import AugmentConfig

log = logging.getLogger(__name__)

GRID_STEPS = 5  # cells per axis of the grid distortion, as in build_transform's GridDistortion
_AFFINE_DRAWS = 8  # flag, scale x/y, rotation, shear x/y, translation x/y
_HOLE_DRAWS = 4  # height, width, top, left


def batch_seed(seed: int, epoch: int, batch: int, rank: int = 0) -> int:
    """A 63-bit seed for one batch of one rank, independent of the seeds of neighbouring batches."""
    return int(np.random.SeedSequence([seed, epoch, batch, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class AugmentParams:
    """What was drawn for each image of a batch; all tensors on the images' device.

    Geometry in pixels with pixel centres at ``i + 0.5``; ``*_on`` say which images get a transform.
    """

    affine_on: torch.Tensor  # (B,) bool
    scale: torch.Tensor  # (B, 2) x, y
    rotate: torch.Tensor  # (B,) degrees
    shear: torch.Tensor  # (B, 2) degrees, x, y
    translate: torch.Tensor  # (B, 2) whole pixels, x, y
    distort_on: torch.Tensor  # (B,) bool
    knots_x: torch.Tensor  # (B, GRID_STEPS + 1) source position of each output cell edge
    knots_y: torch.Tensor  # (B, GRID_STEPS + 1)
    holes: torch.Tensor  # (B, K, 4) x0, y0, x1, y1 (end exclusive)
    hole_on: torch.Tensor  # (B, K) bool: hole k of image b is cut


class DeviceAugment:
    """The affine + grid distortion + coarse dropout of `AugmentConfig` for a float batch."""

    def __init__(self, config: AugmentConfig) -> None:
        if not 0 < config.dropout_holes[0] <= config.dropout_holes[-1]:
            raise ValueError(f"dropout_holes must be 1 <= low <= high, got {config.dropout_holes}")
        self.config = config
        self.max_holes = int(config.dropout_holes[-1])
        # Uniform draws per image: affine, distortion (flag + cell sizes), dropout (flag + count + holes).
        self.draws = (_AFFINE_DRAWS, 1 + 2 * GRID_STEPS, 2 + _HOLE_DRAWS * self.max_holes)
        self.warps = config.affine_p > 0 or config.distort_p > 0
        log.debug("device augmentation: %s", config)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The batch augmented, with the shape, dtype and memory format it came in."""
        if not self.warps and self.config.dropout_p <= 0:
            return images
        batch, _, height, width = _check(images).shape
        return self.apply(images, self.sample(batch, height, width, generator, images.device))

    def sample(
        self, batch: int, height: int, width: int, generator: torch.Generator, device: torch.device
    ) -> AugmentParams:
        """Draw every image's parameters: one uniform tensor from ``generator``, then moved to ``device``.

        The layout of the draws does not depend on the probabilities, so switching one transform
        off leaves the others' draws as they were.
        """
        u = torch.rand((batch, sum(self.draws)), generator=generator, device=generator.device)
        if u.device != torch.device(device):
            if u.device.type == "cpu" and torch.device(device).type == "cuda":
                u = u.pin_memory()  # an async copy needs page-locked memory
            u = u.to(device, non_blocking=True)
        c = self.config
        a, d, h = u.split(self.draws, dim=1)
        affine_on = a[:, 0] < c.affine_p
        scale = _between(a[:, 1:3], c.scale[0], c.scale[-1])
        rotate = _between(a[:, 3], -c.rotate, c.rotate)
        shear = -_between(a[:, 4:6], -c.shear, c.shear)  # albumentations negates its shear draw
        shift = _between(a[:, 6:8], -c.translate, c.translate)
        translate = torch.stack([shift[:, 0] * width, shift[:, 1] * height], -1).trunc()  # int() in albumentations

        distort_on = d[:, 0] < c.distort_p
        steps = 1.0 + _between(d[:, 1:], -c.distort_limit, c.distort_limit)
        steps = torch.where(distort_on[:, None], steps, torch.ones_like(steps))
        knots_x, knots_y = _knots(steps[:, :GRID_STEPS], width), _knots(steps[:, GRID_STEPS:], height)

        low = c.dropout_holes[0]
        n_holes = (low + h[:, 1] * (self.max_holes - low + 1)).floor()
        hole_on = (torch.arange(self.max_holes, device=device) < n_holes[:, None]) & (h[:, :1] < c.dropout_p)
        hole = h[:, 2:].reshape(batch, self.max_holes, _HOLE_DRAWS)
        hole_h = _hole_size(hole[..., 0], c.dropout_size, height)
        hole_w = _hole_size(hole[..., 1], c.dropout_size, width)
        top, left = (hole[..., 2] * (height - hole_h + 1)).floor(), (hole[..., 3] * (width - hole_w + 1)).floor()
        holes = torch.stack([left, top, left + hole_w, top + hole_h], -1)
        return AugmentParams(affine_on, scale, rotate, shear, translate, distort_on, knots_x, knots_y, holes, hole_on)

    def apply(self, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Resample every image once through its affine + distortion grid, then cut its holes."""
        _, _, height, width = _check(images).shape
        out = images
        if self.warps:
            # bf16 keeps 8 bits: grid coordinates would be off by up to half a pixel at 128 px.
            work = torch.float32 if images.dtype == torch.bfloat16 else images.dtype
            grid = sampling_grid(params, height, width).to(work)
            warped = F.grid_sample(images.to(work), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            touched = (params.affine_on | params.distort_on)[:, None, None, None]
            out = torch.where(touched, warped.to(images.dtype), images)  # untouched images stay exact
        if self.config.dropout_p > 0:
            out = out.masked_fill(hole_mask(params, height, width)[:, None], 0)
        channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
        return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def sampling_grid(params: AugmentParams, height: int, width: int) -> torch.Tensor:
    """(B, H, W, 2) grid_sample coordinates: output pixel -> distortion -> inverse affine -> source.

    Albumentations applies the affine first, so an output pixel reads the affine's output at its
    distorted position, which reads the source through the inverse affine. Without distortion
    this is exactly `F.affine_grid` of the inverse matrix (align_corners=False).
    """
    inverse, shift = _inverse_affine(params)
    # Centred pixel coordinates less the translation, (B, W) and (B, H); the affine is linear in
    # each, so every grid coordinate is one outer sum of a row term and a column term.
    xs = _dense(params.knots_x, width) - (width / 2 + shift[:, :1])
    ys = _dense(params.knots_y, height) - (height / 2 + shift[:, 1:])
    m = torch.stack([inverse[:, 0] * (2.0 / width), inverse[:, 1] * (2.0 / height)], 1)  # into [-1, 1]
    from_x = xs[:, :, None] * m[:, None, :, 0]  # (B, W, 2)
    from_y = ys[:, :, None] * m[:, None, :, 1]  # (B, H, 2)
    return from_y[:, :, None, :] + from_x[:, None, :, :]


def hole_mask(params: AugmentParams, height: int, width: int) -> torch.Tensor:
    """(B, H, W) bool, True inside any hole that is on: one batched outer product of rows and columns."""
    rows = _inside(params.holes[..., 1], params.holes[..., 3], height) * params.hole_on[..., None]
    cols = _inside(params.holes[..., 0], params.holes[..., 2], width)
    return torch.bmm(rows.transpose(1, 2), cols) > 0


def _check(images: torch.Tensor) -> torch.Tensor:
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"expected a float batch (B, C, H, W), got {images.dtype} {tuple(images.shape)}")
    return images


def _between(u: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * u


def _knots(steps: torch.Tensor, length: int) -> torch.Tensor:
    """Cell widths jittered by ``steps``, rescaled to fill the axis: the source edge of each output cell."""
    edges = torch.cumsum(steps, dim=1) * (length / steps.sum(dim=1, keepdim=True))
    return torch.cat([torch.zeros_like(edges[:, :1]), edges], dim=1)


def _dense(knots: torch.Tensor, length: int) -> torch.Tensor:
    """(B, length) source coordinate of each output pixel centre, linear between the knots."""
    cells = knots.shape[1] - 1
    pos = (torch.arange(length, device=knots.device, dtype=knots.dtype) + 0.5) * (cells / length)
    cell = pos.floor().clamp(max=cells - 1).long()
    frac = pos - cell
    left = knots[:, cell]
    return left + frac * (knots[:, cell + 1] - left)


def _inverse_affine(params: AugmentParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse 2x2 of albumentations' translate @ shear @ rotate @ scale, and its translation."""
    rad = torch.deg2rad(params.rotate)
    cos, sin = torch.cos(rad), torch.sin(rad)
    tan_x, tan_y = torch.tan(torch.deg2rad(params.shear)).unbind(-1)
    sx, sy = params.scale.unbind(-1)
    # shear [[1, tx], [ty, 1]] @ rotate [[c, s], [-s, c]] @ scale diag(sx, sy)
    m00, m01 = (cos - tan_x * sin) * sx, (sin + tan_x * cos) * sy
    m10, m11 = (tan_y * cos - sin) * sx, (tan_y * sin + cos) * sy
    det = m00 * m11 - m01 * m10
    inverse = torch.stack([torch.stack([m11, -m01], -1), torch.stack([-m10, m00], -1)], -2) / det[:, None, None]
    eye = torch.eye(2, device=inverse.device, dtype=inverse.dtype).expand_as(inverse)
    on = params.affine_on[:, None, None]
    return torch.where(on, inverse, eye), torch.where(on[:, 0], params.translate, torch.zeros_like(params.translate))


def _hole_size(u: torch.Tensor, size: tuple[float, ...], length: int) -> torch.Tensor:
    low, high = size[0], size[-1]
    if high >= 1:  # whole pixels, as albumentations reads sizes of 1 and more
        return (low + u * (min(high, length) - low + 1)).floor().clamp(max=length)
    return (length * _between(u, low, high)).floor()


def _inside(start: torch.Tensor, end: torch.Tensor, length: int) -> torch.Tensor:
    """(B, K, length) float, 1 where start <= i < end."""
    i = torch.arange(length, device=start.device, dtype=start.dtype)
    return ((i >= start[..., None]) & (i < end[..., None])).to(start.dtype)

