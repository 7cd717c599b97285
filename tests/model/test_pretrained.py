"""Loading torchvision/timm checkpoints: the backbone's names are theirs, wrappers, safetensors, clear errors."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from torch import Tensor

from bengaliai.core.errors import BengaliaiError
from bengaliai.model.classifier import BengaliResNet, ModelConfig, build_model

LAYERS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
          "resnet50": ("bottleneck", (3, 4, 6, 3))}


def torchvision_state(
    arch: str, width: int = 64, in_chans: int = 3, bn_counters: bool = True
) -> dict[str, Tensor]:
    """Random tensors under the names and shapes of torchvision's ``resnetNN().state_dict()``.

    Written from torchvision's layout, not from our model, so that it checks the naming.
    """
    block, layers = LAYERS[arch]
    g = torch.Generator().manual_seed(1)
    state: dict[str, Tensor] = {}

    def conv(name: str, out: int, inp: int, k: int) -> None:
        state[f"{name}.weight"] = torch.randn(out, inp, k, k, generator=g)

    def bn(name: str, n: int) -> None:
        state[f"{name}.weight"] = torch.rand(n, generator=g) + 0.5
        state[f"{name}.bias"] = torch.randn(n, generator=g)
        state[f"{name}.running_mean"] = torch.randn(n, generator=g)
        state[f"{name}.running_var"] = torch.rand(n, generator=g) + 0.5
        if bn_counters:
            state[f"{name}.num_batches_tracked"] = torch.tensor(1234)

    expansion = 4 if block == "bottleneck" else 1
    conv("conv1", width, in_chans, 7)
    bn("bn1", width)
    inplanes = width
    for stage, blocks in enumerate(layers):
        planes = width * 2**stage
        for b in range(blocks):
            p = f"layer{stage + 1}.{b}"
            if block == "basic":
                conv(f"{p}.conv1", planes, inplanes, 3), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
            else:
                conv(f"{p}.conv1", planes, inplanes, 1), bn(f"{p}.bn1", planes)
                conv(f"{p}.conv2", planes, planes, 3), bn(f"{p}.bn2", planes)
                conv(f"{p}.conv3", planes * 4, planes, 1), bn(f"{p}.bn3", planes * 4)
            if b == 0 and (stage > 0 or inplanes != planes * expansion):
                conv(f"{p}.downsample.0", planes * expansion, inplanes, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    state["fc.weight"] = torch.randn(1000, inplanes, generator=g)
    state["fc.bias"] = torch.randn(1000, generator=g)
    return state


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_backbone_names_and_shapes_are_torchvision_s(arch: str) -> None:
    own = BengaliResNet(ModelConfig(arch=arch, in_chans=3)).state_dict()
    backbone = {k: tuple(v.shape) for k, v in own.items() if not k.startswith("heads.")}
    reference = {k: tuple(v.shape) for k, v in torchvision_state(arch).items() if not k.startswith("fc.")}
    assert backbone == reference


def _load(tmp_path: Path, checkpoint: object, config: ModelConfig) -> BengaliResNet:
    path = tmp_path / "weights.pth"
    torch.save(checkpoint, path)
    return build_model(dataclasses.replace(config, pretrained=str(path)))


def test_loads_torchvision_checkpoint_into_one_channel_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    saved = torchvision_state("resnet18")
    config = ModelConfig(arch="resnet18")
    torch.manual_seed(0)
    fresh = build_model(config)
    torch.manual_seed(0)
    with caplog.at_level(logging.INFO, logger="bengaliai.model.pretrained"):
        model = _load(tmp_path, saved, config)
    assert "summing the RGB stem" in caplog.text and "loaded 120 backbone tensors" in caplog.text
    torch.testing.assert_close(model.conv1.weight, saved["conv1.weight"].sum(1, keepdim=True))
    for key in ("layer3.1.conv2.weight", "layer2.0.downsample.1.running_mean", "layer4.1.bn2.running_var",
                "bn1.num_batches_tracked"):
        assert torch.equal(model.state_dict()[key], saved[key]), key
    for name, head in model.heads.items():  # heads keep their fresh initialisation
        assert torch.equal(head.weight, fresh.heads[name].weight)
        assert not torch.equal(head.weight, saved["fc.weight"][: len(head.weight)])


def test_wrapped_prefixed_and_old_checkpoints_load(tmp_path: Path) -> None:
    saved = torchvision_state("resnet18", width=8)
    config = ModelConfig(arch="resnet18", base_width=8)
    old = {k: v for k, v in saved.items() if not k.endswith("num_batches_tracked")}  # pre-0.4.1 files
    ddp = {"epoch": 3, "arch": "resnet18", "state_dict": {f"module.{k}": v for k, v in saved.items()}}
    compiled = {"model": {f"_orig_mod.{k}": v for k, v in saved.items()}, "optimizer": {}}
    for checkpoint in (old, ddp, compiled):
        model = _load(tmp_path, checkpoint, config)
        assert torch.equal(model.layer3[1].conv2.weight, saved["layer3.1.conv2.weight"])
    rgb = _load(tmp_path, saved, ModelConfig(arch="resnet18", base_width=8, in_chans=3)).eval()
    assert torch.equal(rgb.conv1.weight, saved["conv1.weight"])
    # The summed stem sees a gray image as the RGB network sees it repeated over three channels.
    gray = model.eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(gray.forward_features(x), rgb.forward_features(x.expand(-1, 3, -1, -1)),
                                   rtol=1e-4, atol=1e-4)


def test_loads_safetensors(tmp_path: Path) -> None:
    saved = torchvision_state("resnet18", width=8)
    header, chunks, offset = {}, [], 0
    for key, value in saved.items():
        data = value.contiguous().numpy().tobytes()
        dtype = "I64" if value.dtype == torch.int64 else "F32"
        header[key] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    head = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(head).to_bytes(8, "little") + head + b"".join(chunks))
    model = build_model(ModelConfig(arch="resnet18", base_width=8, pretrained=str(path)))
    assert torch.equal(model.layer2[0].downsample[1].running_mean, saved["layer2.0.downsample.1.running_mean"])
    torch.testing.assert_close(model.conv1.weight, saved["conv1.weight"].sum(1, keepdim=True))


def test_mismatched_checkpoints_raise_clear_errors(tmp_path: Path) -> None:
    resnet34 = ModelConfig(arch="resnet34", base_width=8)
    expected = (r"not a checkpoint of resnet34.*shape mismatch \(\d+\): "
                r"layer1\.0\.conv1\.weight: checkpoint \(8, 8, 1, 1\), model \(8, 8, 3, 3\)")
    with pytest.raises(BengaliaiError, match=expected):
        _load(tmp_path, torchvision_state("resnet50", width=8), resnet34)
    with pytest.raises(BengaliaiError, match=r"missing \(\d+\): layer1\.2\.conv1\.weight"):
        _load(tmp_path, torchvision_state("resnet18", width=8), resnet34)
    with pytest.raises(BengaliaiError, match=r"unexpected \(\d+\): layer1\.2\.conv1\.weight"):
        _load(tmp_path, torchvision_state("resnet34", width=8), ModelConfig(arch="resnet18", base_width=8))
    with pytest.raises(BengaliaiError, match="not found"):
        build_model(ModelConfig(pretrained=str(tmp_path / "nothing.pth")))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BengaliaiError, match="cannot read"):
        build_model(ModelConfig(pretrained=str(tmp_path / "junk.pth")))
    with pytest.raises(BengaliaiError, match="no state dict found; top-level keys: epoch, args"):
        _load(tmp_path, {"epoch": 1, "args": {"lr": 0.1}}, resnet34)
