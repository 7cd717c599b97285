"""The ResNet backbone: initialisation, the GroupNorm variant, and samples independent in eval mode."""

from __future__ import annotations

import pytest
import torch

from bengaliai.core.errors import BengaliaiError
from bengaliai.model.classifier import ModelConfig, build_model


def test_samples_are_independent_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet10", base_width=8, dropout=0.5)).eval()
    x = torch.randn(3, 1, 64, 64)
    with torch.no_grad():
        batch, single = model(x), model(x[1:2])
    torch.testing.assert_close(batch["grapheme_root"][1:2], single["grapheme_root"], rtol=1e-4, atol=1e-5)


def test_initialisation() -> None:
    torch.manual_seed(0)
    zero = build_model(ModelConfig(arch="resnet50", base_width=8))
    assert torch.all(zero.layer2[1].bn3.weight == 0) and torch.all(zero.layer2[1].bn2.weight == 1)
    plain = build_model(ModelConfig(arch="resnet18", base_width=8, zero_init_residual=False))
    assert torch.all(plain.layer1[0].bn2.weight == 1) and torch.all(plain.bn1.bias == 0)
    std = plain.layer3[0].conv1.weight.std().item()
    assert std == pytest.approx((2 / (32 * 9)) ** 0.5, rel=0.1)  # kaiming normal, fan_out


def test_group_norm_variant_has_no_batchnorm_left() -> None:
    model = build_model(ModelConfig(arch="resnet10", base_width=8, norm="group"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in model.modules()) > 5
    out = model(torch.zeros(2, 1, 32, 32))
    assert out["grapheme_root"].shape == (2, 168)
    with pytest.raises(BengaliaiError, match="norm=group cannot load"):
        ModelConfig(norm="group", pretrained="x.pth")
