"""Device augmentation: albumentations' affine, grid distortion and dropout for a float batch, seeded, async."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.augment_device import DeviceAugment, batch_seed, sampling_grid

OFF = {"affine_p": 0.0, "distort_p": 0.0, "dropout_p": 0.0}
RIGID = {"scale": (1.0, 1.0), "translate": 0.0, "rotate": 0.0, "shear": 0.0}  # affine that changes nothing
ALL_ON = AugmentConfig(affine_p=1.0, distort_p=1.0, dropout_p=1.0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def strokes(n: int, size: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size): white lines and a ring on black, like prepared grapheme crops."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=np.uint8)
    for image in images:
        for _ in range(int(rng.integers(2, 5))):
            x0, y0, x1, y1 = (int(v) for v in rng.integers(size // 6, 5 * size // 6, 4))
            cv2.line(image, (x0, y0), (x1, y1), 255, int(rng.integers(3, 8)), cv2.LINE_AA)
        cx, cy = (int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        cv2.circle(image, (cx, cy), int(rng.integers(size // 10, size // 4)), 255, int(rng.integers(3, 8)), cv2.LINE_AA)
    return images


def _batch(n: int = 8, size: int = 32) -> torch.Tensor:
    return torch.from_numpy(strokes(n, size)).float().div(255)[:, None]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_keeps_shape_dtype_and_memory_format(channels: int, channels_last: bool) -> None:
    images = _batch().expand(-1, channels, -1, -1).contiguous()
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    out = DeviceAugment(ALL_ON)(images, _gen())
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    assert not torch.equal(out, images)


def test_same_seed_same_output_other_seed_other_output() -> None:
    images, augment = _batch(), DeviceAugment(ALL_ON)
    assert torch.equal(augment(images, _gen(1)), augment(images, _gen(1)))
    assert not torch.equal(augment(images, _gen(1)), augment(images, _gen(2)))


def test_all_off_returns_the_input_and_untouched_images_stay_exact() -> None:
    images = _batch()
    assert DeviceAugment(AugmentConfig(**OFF))(images, _gen()) is images
    augment = DeviceAugment(AugmentConfig(affine_p=0.5, distort_p=0.0, dropout_p=0.0))
    params = augment.sample(8, 32, 32, _gen(3), images.device)
    out = augment.apply(images, params)
    kept = ~params.affine_on
    assert kept.any() and params.affine_on.any()
    assert torch.equal(out[kept], images[kept])


def test_affine_matches_albumentations_matrix_through_cv2() -> None:
    fg = pytest.importorskip("albumentations.augmentations.geometric.functional")
    augment = DeviceAugment(AugmentConfig(affine_p=1.0, distort_p=0.0, dropout_p=0.0, rotate=20.0, shear=10.0))
    images = _batch(4, 48)[:, :, :, 8:40].contiguous()  # not square: (48, 32)
    params = augment.sample(4, 48, 32, _gen(5), images.device)
    out = augment.apply(images, params)
    for b in range(4):
        xy = lambda t: {"x": float(t[b, 0]), "y": float(t[b, 1])}  # noqa: E731
        m = fg.create_affine_transformation_matrix(
            xy(params.translate), xy(params.shear), xy(params.scale), float(params.rotate[b]), fg.center((48, 32))
        )
        expected = cv2.warpAffine(images[b, 0].numpy(), m[:2], (32, 48), flags=cv2.INTER_LINEAR)
        np.testing.assert_allclose(out[b, 0].numpy(), expected, atol=1e-4)


def test_without_distortion_the_grid_is_affine_grid_of_the_inverse() -> None:
    augment = DeviceAugment(AugmentConfig(affine_p=1.0, distort_p=0.0, dropout_p=0.0, shear=0.0, scale=(1.0, 1.0)))
    params = augment.sample(3, 40, 40, _gen(), torch.device("cpu"))
    rad = torch.deg2rad(params.rotate)
    # Inverse rotation in normalised coordinates, then minus the translation in normalised units.
    rot = torch.stack([torch.stack([rad.cos(), -rad.sin()], -1), torch.stack([rad.sin(), rad.cos()], -1)], -2)
    shift = -(rot @ (params.translate * 2 / 40)[..., None])
    theta = torch.cat([rot, shift], -1)
    expected = F.affine_grid(theta, [3, 1, 40, 40], align_corners=False)
    torch.testing.assert_close(sampling_grid(params, 40, 40), expected, atol=1e-5, rtol=0)


def test_pure_translation_moves_a_square_by_the_drawn_pixels() -> None:
    augment = DeviceAugment(AugmentConfig(**OFF | RIGID | {"affine_p": 1.0, "translate": 0.2}))
    images = torch.zeros(16, 1, 40, 40)
    images[:, :, 14:24, 12:20] = 1.0
    params = augment.sample(16, 40, 40, _gen(7), images.device)
    out = augment.apply(images, params)
    assert params.translate.abs().max() >= 4
    for b in range(16):
        dx, dy = (int(v) for v in params.translate[b])
        expected = torch.roll(images[b], shifts=(dy, dx), dims=(-2, -1))
        torch.testing.assert_close(out[b], expected, atol=1e-4, rtol=0)


def test_rotation_keeps_the_ink_mass() -> None:
    config = AugmentConfig(**OFF | RIGID | {"affine_p": 1.0, "rotate": 45.0})
    images = _batch(16, 64)
    images[..., :12, :] = 0  # keep the strokes clear of the corners that rotate out of the frame
    images[..., -12:, :] = 0
    out = DeviceAugment(config)(images, _gen())
    ratio = out.sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert torch.all((ratio - 1).abs() < 0.05)


def test_distortion_keeps_the_frame_and_only_bends() -> None:
    config = AugmentConfig(affine_p=0.0, distort_p=1.0, dropout_p=0.0)
    augment = DeviceAugment(config)
    params = augment.sample(8, 32, 48, _gen(), torch.device("cpu"))
    assert torch.all(params.knots_x[:, 0] == 0) and torch.allclose(params.knots_x[:, -1], torch.tensor(48.0))
    assert torch.all(params.knots_y.diff(dim=1) > 0)  # monotone: no folds
    grid = sampling_grid(params, 32, 48)
    assert grid.abs().max() <= 1.0 + 1e-6  # every output pixel reads inside the image
    # It bends: every image's grid leaves the identity by a measurable displacement, in pixels, and
    # by no more than a knot can move: cells of 1 +- limit rescaled to the axis shift an inner knot
    # by at most limit / (2 (1 - limit)) of the axis.
    identity = F.affine_grid(torch.eye(2, 3).expand(8, 2, 3), [8, 1, 32, 48], align_corners=False)
    moved = (grid - identity) * torch.tensor([48 / 2, 32 / 2])
    assert torch.all(moved.norm(dim=-1).mean(dim=(1, 2)) > 0.5)
    reach = config.distort_limit / (2 * (1 - config.distort_limit))
    assert torch.all(moved[..., 0].abs() <= reach * 48 + 1e-4) and torch.all(moved[..., 1].abs() <= reach * 32 + 1e-4)
    # ... and the images follow: the strokes move, the ink stays in the frame with about its mass.
    images = torch.from_numpy(strokes(8, 48)[:, 8:40]).float().div(255)[:, None]
    out = augment.apply(images, params)
    assert torch.all((out - images).abs().mean(dim=(1, 2, 3)) > 0.01)
    ratio = out.sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert torch.all((ratio - 1).abs() < 0.15)


def test_dropout_zeroes_holes_of_the_configured_size() -> None:
    config = AugmentConfig(**OFF | {"dropout_p": 1.0})  # 1-4 holes, sides 8%-20%
    out = DeviceAugment(config)(torch.ones(512, 1, 100, 100), _gen())
    zeroed = 1 - out.mean(dim=(1, 2, 3))
    assert torch.all(zeroed >= 0.08 * 0.08 - 1e-6) and torch.all(zeroed <= 4 * 0.2 * 0.2 + 1e-6)
    assert 0.035 < zeroed.mean() < 0.055  # about 2.5 holes of 0.14^2, less overlaps
    half = DeviceAugment(AugmentConfig(**OFF | {"dropout_p": 0.5}))(torch.ones(512, 1, 100, 100), _gen())
    assert 0.4 < (half.amin(dim=(1, 2, 3)) == 0).float().mean() < 0.6


def test_statistics_match_the_albumentations_path() -> None:
    """Default config over 256 stroke images: ink left and pixels changed agree within 15%."""
    prepared = strokes(256, 128, seed=1)
    transform = build_transform(AugmentConfig())
    reference = np.stack([transform(image=image)["image"] for image in prepared]).astype(np.float32) / 255
    images = torch.from_numpy(prepared).float().div(255)[:, None]
    ours = DeviceAugment(AugmentConfig())(images, _gen())[:, 0].numpy()
    original = prepared.astype(np.float32) / 255
    for measure in (lambda v: (v > 0.5).mean(), lambda v: np.abs(v - original).mean()):
        assert measure(ours) == pytest.approx(measure(reference), rel=0.15)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs_and_agrees_with_float32(dtype: torch.dtype) -> None:
    images, augment = _batch(), DeviceAugment(ALL_ON)
    out = augment(images.to(dtype), _gen())
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), augment(images, _gen()), atol=0.02, rtol=0)


def test_reads_no_tensor_value_on_the_host() -> None:
    """Meta tensors have no values: any .item(), bool() or Python branch on one raises."""
    out = DeviceAugment(ALL_ON)(torch.empty(4, 1, 32, 32, device="meta"), _gen())
    assert out.shape == (4, 1, 32, 32) and out.device.type == "meta"


def test_batch_seed_is_stable_and_distinct() -> None:
    seeds = {batch_seed(0, e, b, r) for e in range(3) for b in range(20) for r in range(4)}
    assert len(seeds) == 3 * 20 * 4
    assert batch_seed(1, 2, 3, 0) == batch_seed(1, 2, 3, 0) and 0 <= batch_seed(1, 2, 3) < 2**63


def test_rejects_integer_images() -> None:
    with pytest.raises(ValueError, match="float batch"):
        DeviceAugment(ALL_ON)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), _gen())


def test_source_has_no_host_reads_or_list_to_device_copies() -> None:
    """What the meta test cannot see: a tensor built from a Python list on a GPU is a blocking copy."""
    import bengaliai.training.augment_device as module

    source = Path(module.__file__).read_text(encoding="utf-8")
    for call in (".item(", ".tolist(", ".cpu(", ".numpy(", "torch.tensor(", "bool(", "float("):
        assert call not in source, call
