"""The residual blocks of the ResNet family and their parts: grouped bottlenecks, squeeze-and-excitation, shortcuts.

Written after timm's ``resnet.py`` and ``layers/squeeze_excite.py`` (whose state-dict names they keep:
``conv1``/``bn1``.., ``se.fc1``/``se.fc2``, ``downsample.0/1`` or, with average pooling, ``downsample.1/2``),
because timm cannot be imported beside the CPU torch. Only what the architectures of ``resnet`` use is
here: no dilation, anti-aliasing, drop-path or first-width reduction.
"""

from __future__ import annotations

from torch import Tensor, nn


def make_divisible(value: float, divisor: int = 8) -> int:
    """The multiple of ``divisor`` nearest to ``value``, at least ``divisor`` (timm's, with ``round_limit=0``)."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


class SEModule(nn.Module):
    """Squeeze-and-excitation: the channel means, a 1x1 bottleneck, a sigmoid gate on each channel.

    The reduction is timm's default for ``attn_layer='se'``: ``rd_ratio=1/16`` rounded to a multiple of
    ``rd_divisor=8`` (16 channels for 256, 128 for 2048).
    """

    def __init__(self, channels: int, rd_ratio: float = 1.0 / 16, rd_divisor: int = 8) -> None:
        super().__init__()
        rd_channels = make_divisible(channels * rd_ratio, rd_divisor)
        self.fc1 = nn.Conv2d(channels, rd_channels, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(rd_channels, channels, 1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        scale = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * self.gate(scale)


ATTENTION: dict[str, type[SEModule]] = {"se": SEModule}


def create_attn(attn_layer: str | None, channels: int) -> nn.Module | None:
    """The attention module named ``attn_layer`` over ``channels``, or None (timm's ``create_attn``)."""
    return None if attn_layer is None else ATTENTION[attn_layer](channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34), optionally squeeze-and-excitation on the residual."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
        cardinality: int = 1, base_width: float = 64, attn_layer: str | None = None,
    ) -> None:
        super().__init__()
        if cardinality != 1 or base_width != 64:
            raise ValueError("BasicBlock has no groups: cardinality 1 and base_width 64 only")
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = create_attn(attn_layer, planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + shortcut)

    def last_bn(self) -> nn.Module:
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 in ``cardinality`` groups (carrying the stride, as torchvision's V1.5), 1x1 expand.

    The 3x3 width is timm's ``int(planes * base_width / 64) * cardinality``: ``planes`` for ResNet-50
    (1 group of 64), 128 in the first stage of a ResNeXt 32x4d (32 groups of 4). Squeeze-and-excitation,
    when asked, gates the expanded output before the shortcut is added (SE-ResNeXt).
    """

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
        cardinality: int = 1, base_width: float = 64, attn_layer: str | None = None,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64)) * cardinality
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, outplanes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.se = create_attn(attn_layer, outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + shortcut)

    def last_bn(self) -> nn.Module:
        return self.bn3


Block = type[BasicBlock] | type[Bottleneck]


def downsample_conv(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """The projection shortcut of torchvision and timm: a strided 1x1 convolution and a norm."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


def downsample_avg(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """The 'd' shortcut (bag of tricks): 2x2 average pooling, then an unstrided 1x1 convolution and a norm.

    Every input pixel reaches the shortcut, where the strided 1x1 convolution skips three in four. The
    pooling is an Identity at stride 1, which keeps timm's indices (``downsample.1`` is the convolution).
    """
    pool: nn.Module = nn.Identity() if stride == 1 else nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False)
    return nn.Sequential(pool, nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
