"""The state-dict layout of timm's ResNeXt and SE-ResNeXt, written from timm's code rather than from ours.

Read against timm's ``timm/models/resnet.py`` (``ResNet.__init__``, ``make_blocks``, ``Bottleneck``,
``downsample_conv``, ``downsample_avg``) and ``timm/layers/squeeze_excite.py`` (``SEModule``) at
huggingface/pytorch-image-models commit aa4b5850c1543fa488abf260f18390eda46cf85d. The model arguments are
those of timm's ``resnext50_32x4d``, ``seresnext26d_32x4d`` and ``seresnext50_32x4d`` entry points.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# timm's model_args of each entry point (block=Bottleneck for all three).
TIMM_ARGS: dict[str, dict] = {
    "resnext50_32x4d": {"layers": (3, 4, 6, 3), "cardinality": 32, "base_width": 4},
    "seresnext26d_32x4d": {"layers": (2, 2, 2, 2), "cardinality": 32, "base_width": 4, "stem_width": 32,
                           "stem_type": "deep", "avg_down": True, "attn_layer": "se"},
    "seresnext50_32x4d": {"layers": (3, 4, 6, 3), "cardinality": 32, "base_width": 4, "attn_layer": "se"},
}
# param_count of timm's results/results-imagenet.csv (1000-class fc included, 3 input channels), in millions.
TIMM_PARAMS_M = {"resnext50_32x4d": 25.03, "seresnext26d_32x4d": 16.81, "seresnext50_32x4d": 27.56}
FC_PARAMS = 2048 * 1000 + 1000


def timm_shapes(name: str, in_chans: int = 3, fc: bool = False) -> dict[str, tuple[int, ...]]:
    """Key -> shape of timm's ``create_model(name).state_dict()`` (``fc.*`` only if asked)."""
    args = TIMM_ARGS[name]
    cardinality, base_width = args["cardinality"], args["base_width"]
    stem_width, deep = args.get("stem_width", 64), args.get("stem_type", "") == "deep"
    avg_down, se = args.get("avg_down", False), args.get("attn_layer") == "se"
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(key: str, out: int, inp: int, k: int, bias: bool = False) -> None:
        shapes[f"{key}.weight"] = (out, inp, k, k)
        if bias:
            shapes[f"{key}.bias"] = (out,)

    def bn(key: str, n: int) -> None:
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{key}.{field}"] = (n,)
        shapes[f"{key}.num_batches_tracked"] = ()

    # ResNet.__init__: inplanes = stem_width * 2 if deep_stem else 64.
    inplanes = stem_width * 2 if deep else 64
    if deep:  # nn.Sequential(conv, norm, act, conv, norm, act, conv)
        conv("conv1.0", stem_width, in_chans, 3), bn("conv1.1", stem_width)
        conv("conv1.3", stem_width, stem_width, 3), bn("conv1.4", stem_width)
        conv("conv1.6", inplanes, stem_width, 3)
    else:
        conv("conv1", inplanes, in_chans, 7)
    bn("bn1", inplanes)
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), args["layers"], strict=True)):
        stride = 1 if stage == 0 else 2
        outplanes = planes * 4
        for b in range(blocks):
            p = f"layer{stage + 1}.{b}"
            width = int(math.floor(planes * (base_width / 64)) * cardinality)
            conv(f"{p}.conv1", width, inplanes, 1), bn(f"{p}.bn1", width)
            conv(f"{p}.conv2", width, width // cardinality, 3), bn(f"{p}.bn2", width)  # groups=cardinality
            conv(f"{p}.conv3", outplanes, width, 1), bn(f"{p}.bn3", outplanes)
            if se:  # SEModule(outplanes): rd_ratio 1/16, rd_divisor 8; outplanes / 16 is already a multiple of 8
                rd = outplanes // 16
                conv(f"{p}.se.fc1", rd, outplanes, 1, bias=True)
                conv(f"{p}.se.fc2", outplanes, rd, 1, bias=True)
            if b == 0 and (stride != 1 or inplanes != outplanes):
                if avg_down:  # [AvgPool2d or Identity, conv, norm]
                    conv(f"{p}.downsample.1", outplanes, inplanes, 1), bn(f"{p}.downsample.2", outplanes)
                else:  # [conv, norm]
                    conv(f"{p}.downsample.0", outplanes, inplanes, 1), bn(f"{p}.downsample.1", outplanes)
            inplanes = outplanes
    if fc:
        shapes["fc.weight"], shapes["fc.bias"] = (1000, inplanes), (1000,)
    return shapes


def timm_state(name: str, seed: int = 1) -> dict[str, Tensor]:
    """Random tensors under the names and shapes of timm's ImageNet checkpoint of ``name`` (RGB stem, ``fc``)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in timm_shapes(name, fc=True).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1234)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state
