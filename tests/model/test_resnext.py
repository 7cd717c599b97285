"""ResNeXt and SE-ResNeXt: timm's names, shapes and parameter counts, timm's weights loaded, the width option."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import torch
from torch import Tensor

from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.core.errors import BengaliaiError
from bengaliai.model.classifier import BengaliResNet, ModelConfig, build_model

from timm_layout import FC_PARAMS, TIMM_PARAMS_M, timm_shapes, timm_state

NEW_ARCHS = ("resnext50_32x4d", "seresnext26d_32x4d", "seresnext50_32x4d")


def _backbone(model: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith("heads.")}


@pytest.fixture(scope="module")
def rgb_models() -> dict[str, BengaliResNet]:
    """Each new architecture at full width with an RGB stem, as timm builds it (built once: 15-25 M parameters)."""
    torch.manual_seed(0)
    return {arch: BengaliResNet(ModelConfig(arch=arch, in_chans=3)) for arch in NEW_ARCHS}


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_state_dict_is_timm_s(arch: str, rgb_models: dict[str, BengaliResNet]) -> None:
    own = {k: tuple(v.shape) for k, v in _backbone(rgb_models[arch]).items()}
    assert own == timm_shapes(arch)


@pytest.mark.parametrize(
    ("arch", "samples"), [
        ("resnext50_32x4d", {"conv1.weight": (64, 3, 7, 7), "layer1.0.conv2.weight": (128, 4, 3, 3),
                             "layer3.0.downsample.0.weight": (1024, 512, 1, 1), "layer4.2.conv2.weight": (1024, 32, 3, 3)}),
        ("seresnext26d_32x4d", {"conv1.0.weight": (32, 3, 3, 3), "conv1.4.running_var": (32,),
                                "conv1.6.weight": (64, 32, 3, 3), "bn1.weight": (64,),
                                "layer1.0.downsample.1.weight": (256, 64, 1, 1), "layer1.0.downsample.2.bias": (256,),
                                "layer1.0.se.fc1.weight": (16, 256, 1, 1), "layer4.1.se.fc2.bias": (2048,)}),
        ("seresnext50_32x4d", {"layer2.3.se.fc1.bias": (32,), "layer3.5.se.fc2.weight": (1024, 64, 1, 1),
                               "layer4.0.downsample.1.running_mean": (2048,), "layer4.2.se.fc1.weight": (128, 2048, 1, 1)}),
    ],
)
def test_key_samples_from_timm_s_checkpoints(
    arch: str, samples: dict[str, tuple[int, ...]], rgb_models: dict[str, BengaliResNet]
) -> None:
    own = _backbone(rgb_models[arch])
    assert {k: tuple(own[k].shape) for k in samples} == samples
    if arch == "seresnext26d_32x4d":  # avg_down: downsample.0 is the pooling, which has no tensors
        assert not any(".downsample.0." in k for k in own)


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_parameter_count_is_timm_s(arch: str, rgb_models: dict[str, BengaliResNet]) -> None:
    model = rgb_models[arch]
    backbone = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("heads."))
    # timm's published count less its 1000-class fc (22.98 M, 14.76 M, 25.51 M), within 1%.
    assert backbone == pytest.approx(TIMM_PARAMS_M[arch] * 1e6 - FC_PARAMS, rel=0.01)
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    exact = sum(torch.Size(s).numel() for k, s in timm_shapes(arch).items() if not k.endswith(buffers))
    assert backbone == exact


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_forward_gives_the_heads(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, aux_graphemes=True)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {**{c: (2, N_CLASSES[c]) for c in COMPONENTS}, "grapheme": (2, 1295)}
    assert model.num_features == 2048 and all(torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize("arch", ["resnext50_32x4d", "seresnext26d_32x4d"])
def test_base_width_scales_every_width_by_the_number_of_groups(arch: str) -> None:
    """base_width=32 halves every channel count; the channels per group (conv2's second dimension) stay."""
    half = _backbone(BengaliResNet(ModelConfig(arch=arch, base_width=32)))
    expected = {}
    for key, shape in timm_shapes(arch, in_chans=1).items():
        dims = list(shape)
        if dims:
            dims[0] //= 2
        if len(dims) == 4 and not key.endswith(".conv2.weight") and key not in ("conv1.weight", "conv1.0.weight"):
            dims[1] //= 2
        expected[key] = tuple(dims)
    assert {k: tuple(v.shape) for k, v in half.items()} == expected
    narrow = BengaliResNet(ModelConfig(arch=arch, base_width=8))
    assert narrow.layer1[0].conv2.groups == 4 and tuple(narrow.layer4[0].conv2.weight.shape) == (128, 32, 3, 3)
    grouped = BengaliResNet(ModelConfig(arch=arch, base_width=8, norm="group")).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in grouped.modules())
    with torch.no_grad():
        assert grouped(torch.randn(2, 1, 32, 32))["grapheme_root"].shape == (2, 168)


def test_a_width_that_does_not_give_whole_groups_is_refused() -> None:
    for width in (48, 1, 12):
        with pytest.raises(BengaliaiError, match=rf"model.base_width of seresnext50_32x4d: expected a power of two "
                                                 rf"from 2 .*32 groups.*got {width}$"):
            ModelConfig(arch="seresnext50_32x4d", base_width=width)
    assert ModelConfig(arch="resnet18", base_width=48).base_width == 48  # the plain ResNets take any width


def _load(tmp_path: Path, state: dict[str, Tensor], config: ModelConfig) -> BengaliResNet:
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    return build_model(dataclasses.replace(config, pretrained=str(path)))


@pytest.mark.parametrize(("arch", "stem"), [("seresnext26d_32x4d", "conv1.0.weight"), ("seresnext50_32x4d", "conv1.weight")])
def test_loads_timm_checkpoint_with_the_stem_summed_to_gray(
    arch: str, stem: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saved = timm_state(arch)
    config = ModelConfig(arch=arch)
    torch.manual_seed(0)
    fresh = build_model(config)
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="bengaliai.model.pretrained"):
        model = _load(tmp_path, saved, config)
    assert "summing the RGB stem" in caplog.text
    assert f"loaded {len(saved) - 2} backbone tensors into {arch}" in caplog.text
    own = model.state_dict()
    torch.testing.assert_close(own[stem], saved[stem].sum(1, keepdim=True))
    for key, value in saved.items():
        if key != stem and not key.startswith("fc."):
            assert torch.equal(own[key], value), key
    for name, head in model.heads.items():  # heads keep their fresh initialisation
        assert torch.equal(head.weight, fresh.heads[name].weight)


def test_the_summed_deep_stem_sees_gray_as_rgb_sees_it_repeated(tmp_path: Path) -> None:
    saved = timm_state("seresnext26d_32x4d")
    path = tmp_path / "weights.pth"
    torch.save(saved, path)
    gray = build_model(ModelConfig(arch="seresnext26d_32x4d", pretrained=str(path))).eval()
    rgb = build_model(ModelConfig(arch="seresnext26d_32x4d", in_chans=3, pretrained=str(path))).eval()
    assert torch.equal(rgb.conv1[0].weight, saved["conv1.0.weight"])
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gray.forward_features(x), rgb.forward_features(x.expand(-1, 3, -1, -1)),
                                   rtol=1e-4, atol=1e-6)


def _refusal(tmp_path: Path, state: dict[str, Tensor], arch: str) -> str:
    with pytest.raises(BengaliaiError) as raised:
        _load(tmp_path, state, ModelConfig(arch=arch))
    message = str(raised.value)
    assert len(message.splitlines()) == 1, message
    return message


def test_a_missing_key_or_a_wrong_shape_is_one_line_naming_it(tmp_path: Path) -> None:
    arch = "seresnext26d_32x4d"
    saved = timm_state(arch)
    prefix = f"{tmp_path / 'weights.pth'}: not a checkpoint of {arch} (base width 64, 1 input channel(s)); "
    missing = {k: v for k, v in saved.items() if k != "layer2.1.se.fc2.bias"}
    assert _refusal(tmp_path, missing, arch) == prefix + "missing (1): layer2.1.se.fc2.bias"
    ungrouped = saved | {"layer1.0.conv2.weight": torch.zeros(128, 128, 3, 3)}
    assert _refusal(tmp_path, ungrouped, arch) == (
        prefix + "shape mismatch (1): layer1.0.conv2.weight: checkpoint (128, 128, 3, 3), model (128, 4, 3, 3)")
    # A ResNeXt checkpoint is not an SE-ResNeXt's: the first missing key is the first block's SE.
    message = _refusal(tmp_path, timm_state("resnext50_32x4d"), "seresnext50_32x4d")
    assert "; missing (64): layer1.0.se.fc1.weight, layer1.0.se.fc1.bias," in message
    message = _refusal(tmp_path, timm_state("seresnext50_32x4d"), "resnext50_32x4d")
    assert message.endswith("unexpected (64): layer1.0.se.fc1.weight, layer1.0.se.fc1.bias, layer1.0.se.fc2.weight, "
                            "layer1.0.se.fc2.bias, layer1.1.se.fc1.weight, layer1.1.se.fc1.bias, layer1.1.se.fc2.weight, "
                            "layer1.1.se.fc2.bias, ...")
