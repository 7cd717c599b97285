"""The ResNet family as data: ResNet, ResNeXt and SE-ResNeXt with timm's stems and shortcuts, one builder.

timm's ``resnet.py`` (same module names: ``conv1``, ``bn1``, ``layer1``.. ``layer4``, the blocks of
``blocks``), written here because torchvision and timm would pull a CUDA torch. Keeping the names means
an ImageNet checkpoint of torchvision or timm loads by name (``pretrained``); only the RGB stem is folded
to one channel. Each architecture is an ``Architecture`` in ``ARCHITECTURES``; the heads on top are
``classifier``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bengaliai.model.blocks import BasicBlock, Block, Bottleneck, downsample_avg, downsample_conv


@dataclass(frozen=True)
class Architecture:
    """One member of the family, in timm's terms.

    ``group_width`` is timm's ``base_width``: channels per group of the 3x3 convolution per 64 planes
    (4 in a ResNeXt 32x4d, 64 with one group in a ResNet). ``stem_type='deep'`` is three 3x3 convolutions
    of ``stem_width``, ``stem_width``, ``2 * stem_width`` channels in place of the 7x7 (timm's 'c'/'d'
    models); ``avg_down`` pools before the 1x1 projection of a shortcut ('d'); ``attn_layer='se'`` adds
    squeeze-and-excitation to every block.
    """

    block: Block
    layers: tuple[int, int, int, int]
    cardinality: int = 1
    group_width: int = 64
    stem_type: Literal["", "deep"] = ""
    stem_width: int = 64
    avg_down: bool = False
    attn_layer: Literal["se"] | None = None

    def width_problem(self, base_width: int) -> str | None:
        """Why ``model.base_width`` cannot scale this architecture, or None.

        A grouped architecture keeps its channels per group and scales its number of groups with the
        width (32 groups at 64, 4 at 8): the groups must come out whole, and a power of two keeps timm's
        width arithmetic exact.
        """
        if self.cardinality == 1:
            return None
        smallest = max(1, 64 // self.cardinality)
        if base_width < smallest or base_width & (base_width - 1):
            return (f"a power of two from {smallest} for an architecture of {self.cardinality} groups "
                    f"(it scales the number of groups, {self.cardinality} at 64), got {base_width}")
        return None


# resnet10 is for smoke tests and quick CPU runs. The others are timm's of the same name (resnet18/34/50 and
# resnext50_32x4d also torchvision's, with the same tensor names).
ARCHITECTURES: dict[str, Architecture] = {
    "resnet10": Architecture(BasicBlock, (1, 1, 1, 1)),
    "resnet18": Architecture(BasicBlock, (2, 2, 2, 2)),
    "resnet34": Architecture(BasicBlock, (3, 4, 6, 3)),
    "resnet50": Architecture(Bottleneck, (3, 4, 6, 3)),
    "resnext50_32x4d": Architecture(Bottleneck, (3, 4, 6, 3), cardinality=32, group_width=4),
    "seresnext26d_32x4d": Architecture(
        Bottleneck, (2, 2, 2, 2), cardinality=32, group_width=4, stem_type="deep", stem_width=32,
        avg_down=True, attn_layer="se",
    ),
    "seresnext50_32x4d": Architecture(Bottleneck, (3, 4, 6, 3), cardinality=32, group_width=4, attn_layer="se"),
}


class ResNet(nn.Module):
    """The backbone of ``ARCHITECTURES[arch]``: stem, four stages, global average pooling.

    ``base_width`` is the width of the first stage's planes and of the stem (64 in every published
    model); every channel count scales with it by ``base_width / 64``: a grouped architecture by its
    number of groups (``Architecture.width_problem``), the deep stem of the 'd' models to ``base_width / 2,
    base_width / 2, base_width``. The weights keep PyTorch's defaults until ``init_weights``, which the model built on
    top calls once its own layers exist, so the random draws come after every layer's construction.
    """

    def __init__(self, arch: str, in_chans: int = 1, base_width: int = 64) -> None:
        super().__init__()
        self.arch, self.in_chans, self.base_width = arch, in_chans, base_width
        spec = ARCHITECTURES[arch]
        problem = spec.width_problem(base_width)
        if problem is not None:
            raise ValueError(f"{arch}: base_width must be {problem}")
        self.conv1, self.inplanes = self._stem(spec, in_chans, base_width)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(spec, base_width, spec.layers[0], 1)
        self.layer2 = self._make_layer(spec, base_width * 2, spec.layers[1], 2)
        self.layer3 = self._make_layer(spec, base_width * 4, spec.layers[2], 2)
        self.layer4 = self._make_layer(spec, base_width * 8, spec.layers[3], 2)
        self.num_features = base_width * 8 * spec.block.expansion

    @staticmethod
    def _stem(spec: Architecture, in_chans: int, base_width: int) -> tuple[nn.Module, int]:
        """The 7x7 stride-2 convolution, or timm's deep stem of three 3x3 (the first strided); its channels."""
        if spec.stem_type != "deep":
            return nn.Conv2d(in_chans, base_width, 7, 2, 3, bias=False), base_width
        mid = max(1, spec.stem_width * base_width // 64)
        return nn.Sequential(
            nn.Conv2d(in_chans, mid, 3, 2, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, 1, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, 2 * mid, 3, 1, 1, bias=False),
        ), 2 * mid

    def _make_layer(self, spec: Architecture, planes: int, blocks: int, stride: int) -> nn.Sequential:
        block, out = spec.block, planes * spec.block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = (downsample_avg if spec.avg_down else downsample_conv)(self.inplanes, out, stride)
        # At base width 64 these are the architecture's own; narrower, fewer groups of the same width.
        cardinality, group_width = spec.cardinality, float(spec.group_width)
        if spec.cardinality > 1:
            cardinality = spec.cardinality * self.base_width // 64
            group_width = spec.group_width * 64 / self.base_width
        make = partial(block, cardinality=cardinality, base_width=group_width, attn_layer=spec.attn_layer)
        stage = [make(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        stage += [make(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def init_weights(self, zero_init_residual: bool) -> None:
        """Kaiming-normal convolutions, unit norms; ``zero_init_residual`` starts each block as the identity."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(module.last_bn().weight)

    def stem_weight_key(self) -> str:
        """The state-dict name of the first convolution's weight (``conv1.weight``, ``conv1.0.weight``)."""
        return "conv1.0.weight" if isinstance(self.conv1, nn.Sequential) else "conv1.weight"

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled backbone features, shape (batch, num_features)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def replace_batchnorm(module: nn.Module) -> None:
    """Swap every BatchNorm2d under ``module`` for a GroupNorm of up to 32 groups, in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            channels = child.num_features
            setattr(module, name, nn.GroupNorm(math.gcd(32, channels), channels))
        else:
            replace_batchnorm(child)
