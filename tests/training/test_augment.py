"""Augmentation: switchable transforms, CutMix/MixUp that keep the three targets consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bengaliai.core.competition import COMPONENTS
from bengaliai.training.augment import AugmentConfig, build_transform, mix_batch


def _targets(n: int) -> dict[str, torch.Tensor]:
    return {name: torch.arange(n) + 100 * i for i, name in enumerate(COMPONENTS)}


def test_transform_keeps_uint8_shape_and_background() -> None:
    transform = build_transform(AugmentConfig(affine_p=1.0, distort_p=1.0, dropout_p=1.0))
    image = np.zeros((64, 64), dtype=np.uint8)
    image[20:44, 24:40] = 255
    out = transform(image=image)["image"]
    assert out.shape == (64, 64) and out.dtype == np.uint8
    assert out[0, 0] == 0 and out.max() > 0  # fills with background, keeps ink


def test_all_off_means_no_transform() -> None:
    assert build_transform(AugmentConfig(affine_p=0, distort_p=0, dropout_p=0)) is None


def test_no_mixing_returns_the_batch_untouched() -> None:
    images = torch.rand(4, 1, 8, 8)
    mixed = mix_batch(images, _targets(4), AugmentConfig(), torch.Generator().manual_seed(0))
    assert mixed.lam == 1.0 and mixed.images is images


def test_mixup_mixes_images_and_all_targets_with_one_permutation() -> None:
    images = torch.rand(8, 1, 8, 8)
    config = AugmentConfig(mixup_p=1.0, mixup_alpha=0.4)
    mixed = mix_batch(images, _targets(8), config, torch.Generator().manual_seed(1))
    order = mixed.targets_b["grapheme_root"]
    for i, name in enumerate(COMPONENTS):
        assert torch.equal(mixed.targets_b[name], order + 100 * i)  # one permutation for every head
    expected = images * mixed.lam + images[order] * (1 - mixed.lam)
    assert torch.allclose(mixed.images, expected)
    assert 0.0 < mixed.lam < 1.0


def test_cutmix_weight_equals_the_area_kept() -> None:
    images = torch.zeros(6, 1, 32, 32)
    for i in range(6):
        images[i] = i + 1  # each image one constant value
    config = AugmentConfig(cutmix_p=1.0, cutmix_alpha=1.0)
    for seed in range(5):
        mixed = mix_batch(images, _targets(6), config, torch.Generator().manual_seed(seed))
        kept = (mixed.images[0] == 1).float().mean().item()
        if mixed.targets_b["grapheme_root"][0] != 0:
            assert kept == pytest.approx(mixed.lam)
        assert torch.equal(mixed.targets_a["vowel_diacritic"], _targets(6)["vowel_diacritic"])


def test_mixing_replays_from_the_generator_seed() -> None:
    images = torch.rand(8, 1, 16, 16)
    config = AugmentConfig(cutmix_p=0.5, mixup_p=0.5)
    a = mix_batch(images, _targets(8), config, torch.Generator().manual_seed(5))
    b = mix_batch(images, _targets(8), config, torch.Generator().manual_seed(5))
    assert a.lam == b.lam and torch.equal(a.images, b.images)
