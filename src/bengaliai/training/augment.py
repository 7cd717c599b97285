"""Training augmentation: per-image albumentations on uint8, batch-level CutMix and MixUp on the device.

Per-image transforms run in the loader workers on uint8 arrays (ink high, background 0, so
every fill value is 0). CutMix and MixUp run on the float batch where the model lives and mix
all three targets with the same weight, so the loss stays consistent across the heads. Flips
are never used: they turn letters into other letters or into nothing.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

from bengaliai.core.errors import BengaliaiError

if TYPE_CHECKING:
    import albumentations as A


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths and probabilities; p=0 switches a transform off."""

    affine_p: float = 0.8
    scale: tuple[float, ...] = (0.85, 1.15)
    translate: float = 0.06
    rotate: float = 10.0
    shear: float = 8.0
    distort_p: float = 0.2
    distort_limit: float = 0.25
    dropout_p: float = 0.5
    dropout_holes: tuple[int, ...] = (1, 4)
    dropout_size: tuple[float, ...] = (0.08, 0.2)
    cutmix_p: float = 0.0
    cutmix_alpha: float = 1.0
    mixup_p: float = 0.0
    mixup_alpha: float = 0.4
    # Where the per-image transforms run: "loader" (albumentations in the loader workers, on the
    # CPU) or "device" (bengaliai.training.augment_device, per batch on the training device: for a GPU whose
    # loader cores cannot keep up). CutMix/MixUp always run on the device.
    where: Literal["loader", "device"] = "loader"

    def __post_init__(self) -> None:
        found = []
        for name in ("affine_p", "distort_p", "dropout_p", "cutmix_p", "mixup_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                found.append(f"augment.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.cutmix_p + self.mixup_p > 1.0:
            found.append(f"augment.cutmix_p + augment.mixup_p must be <= 1, got {self.cutmix_p + self.mixup_p}")
        for name in ("scale", "dropout_holes", "dropout_size"):
            value = getattr(self, name)
            if len(value) != 2 or value[0] > value[1] or value[0] < 0:
                found.append(f"augment.{name} must be [low, high] with 0 <= low <= high, got {list(value)}")
        if self.where not in ("loader", "device"):
            found.append(f"augment.where must be loader or device, got {self.where!r}")
        if found:
            raise BengaliaiError("\n".join(found))


def build_transform(config: AugmentConfig) -> A.Compose | None:
    """The per-image pipeline of the loader, or None when every transform is off or runs on the device."""
    if config.where == "device":
        return None
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # its import would otherwise call the network
    import albumentations as A

    transforms: list[A.BasicTransform] = []
    if config.affine_p > 0:
        transforms.append(
            A.Affine(
                scale=tuple(config.scale),
                translate_percent=(-config.translate, config.translate),
                rotate=(-config.rotate, config.rotate),
                shear=(-config.shear, config.shear),
                fill=0,
                p=config.affine_p,
            )
        )
    if config.distort_p > 0:
        # Grid distortion bends strokes like an unsteady hand at a fraction of elastic's cost.
        transforms.append(A.GridDistortion(num_steps=5, distort_limit=config.distort_limit, fill=0, p=config.distort_p))
    if config.dropout_p > 0:
        transforms.append(
            A.CoarseDropout(
                num_holes_range=tuple(config.dropout_holes),
                hole_height_range=tuple(config.dropout_size),
                hole_width_range=tuple(config.dropout_size),
                fill=0,
                p=config.dropout_p,
            )
        )
    return A.Compose(transforms, seed=0) if transforms else None


@dataclass(frozen=True)
class MixedBatch:
    """A batch after CutMix/MixUp: targets ``a`` weighted ``lam``, targets ``b`` weighted ``1 - lam``."""

    images: torch.Tensor
    targets_a: dict[str, torch.Tensor]
    targets_b: dict[str, torch.Tensor]
    lam: float


def mix_batch(
    images: torch.Tensor, targets: dict[str, torch.Tensor], config: AugmentConfig, generator: torch.Generator
) -> MixedBatch:
    """Apply CutMix (probability cutmix_p) or else MixUp (mixup_p) to a float batch (B, C, H, W).

    Draws come from ``generator`` (on the CPU) so a run replays exactly from its seed; the
    permutation is drawn on the images' device from a seed of it, so nothing is copied to the
    device in the step.
    """
    draw = float(torch.rand((), generator=generator))
    if draw < config.cutmix_p:
        return _cutmix(images, targets, config.cutmix_alpha, generator)
    if draw < config.cutmix_p + config.mixup_p:
        return _mixup(images, targets, config.mixup_alpha, generator)
    return MixedBatch(images, targets, targets, 1.0)


def _beta(alpha: float, generator: torch.Generator) -> float:
    # torch's Beta sampler takes no generator; two Gammas from the seeded generator make one.
    a = torch._standard_gamma(torch.tensor([alpha, alpha]), generator=generator)
    return float(a[0] / a.sum())


def _permutation(n: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    device_generator = torch.Generator(device=device).manual_seed(seed)
    return torch.randperm(n, generator=device_generator, device=device)


def _permuted(targets: dict[str, torch.Tensor], order: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: value[order] for name, value in targets.items()}


def _mixup(
    images: torch.Tensor, targets: dict[str, torch.Tensor], alpha: float, generator: torch.Generator
) -> MixedBatch:
    lam = _beta(alpha, generator)
    order = _permutation(images.shape[0], images.device, generator)
    mixed = images * lam + images[order] * (1.0 - lam)
    return MixedBatch(mixed, targets, _permuted(targets, order), lam)


def _cutmix(
    images: torch.Tensor, targets: dict[str, torch.Tensor], alpha: float, generator: torch.Generator
) -> MixedBatch:
    lam = _beta(alpha, generator)
    height, width = images.shape[-2:]
    cut_h, cut_w = int(height * math.sqrt(1.0 - lam)), int(width * math.sqrt(1.0 - lam))
    cy = int(torch.randint(height, (), generator=generator))
    cx = int(torch.randint(width, (), generator=generator))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    order = _permutation(images.shape[0], images.device, generator)
    mixed = images.clone()
    mixed[..., y0:y1, x0:x1] = images[order][..., y0:y1, x0:x1]
    # The box was clipped at the border: weight the targets by the area actually pasted.
    lam = 1.0 - (y1 - y0) * (x1 - x0) / float(height * width)
    return MixedBatch(mixed, targets, _permuted(targets, order), lam)
