"""The multi-head classifier: sizes, outputs, the auxiliary head, and its configuration checked."""

from __future__ import annotations

import pytest
import torch

from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.core.errors import BengaliaiError
from bengaliai.model.classifier import ModelConfig, build_model, head_sizes
from bengaliai.model.resnet import ARCHITECTURES


def test_resnet34_has_the_measured_parameter_count() -> None:
    model = build_model(ModelConfig())
    n = sum(p.numel() for p in model.parameters())
    # torchvision resnet34 (21.80 M) - fc (0.51 M) - two stem input channels + heads 512 * 186 + 186.
    assert n == 21_797_672 - 513_000 - 2 * 64 * 49 + 512 * 186 + 186
    assert n == pytest.approx(21.4e6, rel=0.01)


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("size", [(64, 64), (137, 236)])
def test_output_shapes(arch: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, base_width=8)).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(2, 1, *size))
        out = model(torch.randn(2, 1, *size))
    assert features.shape == (2, model.num_features)
    assert list(out) == list(COMPONENTS)
    assert {k: tuple(v.shape) for k, v in out.items()} == {c: (2, N_CLASSES[c]) for c in COMPONENTS}


def test_aux_grapheme_head_only_when_enabled() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 1, 64, 64)
    plain = build_model(ModelConfig(arch="resnet10", base_width=8)).eval()
    aux = build_model(ModelConfig(arch="resnet10", base_width=8, aux_graphemes=True)).eval()
    assert list(plain(x)) == list(COMPONENTS)
    out = aux(x)
    assert list(out) == [*COMPONENTS, "grapheme"]
    assert out["grapheme"].shape == (3, 1295)
    assert head_sizes(aux.config) == {**N_CLASSES, "grapheme": 1295}


def test_forward_is_head_of_features_and_channels_last_agrees() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="resnet18", base_width=8, zero_init_residual=False)).eval()
    x = torch.randn(4, 1, 72, 80)
    with torch.no_grad():
        out = model(x)
        split = model.forward_head(model.forward_features(x))
        last = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    for c in COMPONENTS:
        assert torch.equal(out[c], split[c])
        torch.testing.assert_close(last[c], out[c], rtol=1e-4, atol=1e-4)


def test_config_is_checked() -> None:
    with pytest.raises(BengaliaiError, match="unknown 'resnet35'; known: resnet10, resnet18, resnet34"):
        ModelConfig(arch="resnet35")
    with pytest.raises(BengaliaiError, match="dropout"):
        ModelConfig(dropout=1.0)
