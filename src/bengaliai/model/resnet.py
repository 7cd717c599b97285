"""The classifier: a ResNet backbone with one linear head per grapheme component.

The backbone is torchvision's ResNet (same module names: ``conv1``, ``bn1``, ``layer1``..
``layer4``, ``downsample.0/1``), written here because torchvision and timm would pull a CUDA
torch. Keeping the names means an ImageNet checkpoint of torchvision or timm loads by name;
only the RGB stem is folded to one channel. Architectures are data in ``ARCHITECTURES``.
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bengaliai.core.competition import COMPONENTS, N_CLASSES, seen_graphemes
from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

AUX_HEAD = "grapheme"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)

    def last_bn(self) -> nn.Module:
        return self.bn2


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's V1.5), 1x1 expand (ResNet-50)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)

    def last_bn(self) -> nn.Module:
        return self.bn3


Block = type[BasicBlock] | type[Bottleneck]

# Block type and blocks per stage. resnet10 is for smoke tests and quick CPU runs.
ARCHITECTURES: dict[str, tuple[Block, tuple[int, int, int, int]]] = {
    "resnet10": (BasicBlock, (1, 1, 1, 1)),
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


@dataclass(frozen=True)
class ModelConfig:
    """What to build: architecture, input channels, heads, and an optional ImageNet checkpoint.

    ``base_width`` is the width of the stem and the first stage (64 in every published ResNet;
    smaller only for tests). ``zero_init_residual`` starts each block as the identity, which
    helps training from scratch (timm does it by default); pretrained weights overwrite it.
    """

    arch: str = "resnet34"
    in_chans: int = 1
    base_width: int = 64
    pretrained: str | None = None
    aux_graphemes: bool = False
    dropout: float = 0.0
    zero_init_residual: bool = True
    # "group" swaps every BatchNorm for GroupNorm: statistics no longer depend on the batch split,
    # so several CPU processes (where SyncBatchNorm does not run) train exactly like one.
    norm: Literal["batch", "group"] = "batch"

    def __post_init__(self) -> None:
        if self.norm not in ("batch", "group"):
            raise BengaliaiError(f"model.norm: expected 'batch' or 'group', got {self.norm!r}")
        if self.norm == "group" and self.pretrained is not None:
            raise BengaliaiError("model.norm=group cannot load ImageNet BatchNorm weights; use norm=batch with pretrained")
        if self.arch not in ARCHITECTURES:
            raise BengaliaiError(f"model.arch: unknown {self.arch!r}; known: {', '.join(ARCHITECTURES)}")
        if self.in_chans < 1 or self.base_width < 1:
            raise BengaliaiError(
                f"model: in_chans and base_width must be positive, got {self.in_chans}, {self.base_width}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise BengaliaiError(f"model.dropout: expected 0 <= dropout < 1, got {self.dropout}")


def head_sizes(config: ModelConfig) -> dict[str, int]:
    """Output name -> number of classes, in the order ``forward`` returns them."""
    sizes = {name: N_CLASSES[name] for name in COMPONENTS}
    if config.aux_graphemes:
        sizes[AUX_HEAD] = len(seen_graphemes())
    return sizes


class BengaliResNet(nn.Module):
    """ResNet features, global average pool, dropout, and one linear head per output."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        block, layers = ARCHITECTURES[config.arch]
        width = config.base_width
        self.inplanes = width
        self.conv1 = nn.Conv2d(config.in_chans, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.num_features = width * 8 * block.expansion
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(self.num_features, n) for name, n in head_sizes(config).items()}
        )
        if config.norm == "group":
            _replace_batchnorm(self)
        self._init_weights(config.zero_init_residual)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self, zero_init_residual: bool) -> None:
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

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled backbone features, shape (batch, num_features)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward_head(self, features: Tensor) -> dict[str, Tensor]:
        """Logits per output name: the three components, then ``grapheme`` if enabled."""
        features = self.dropout(features)
        return {name: head(features) for name, head in self.heads.items()}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_head(self.forward_features(x))


def _replace_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            channels = child.num_features
            setattr(module, name, nn.GroupNorm(math.gcd(32, channels), channels))
        else:
            _replace_batchnorm(child)


def build_model(config: ModelConfig) -> BengaliResNet:
    """A freshly initialised model, with ImageNet backbone weights if ``config.pretrained``."""
    model = BengaliResNet(config)
    if config.pretrained is not None:
        load_pretrained(model, config.pretrained)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s, %d input channel(s), %.2f M parameters, heads %s",
             config.arch, config.in_chans, n_params / 1e6, head_sizes(config))
    return model


# Checkpoint wrappers and name prefixes of training scripts (DataParallel/DDP, torch.compile).
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_PREFIXES = ("module.", "_orig_mod.")
# ImageNet classifiers (torchvision/timm ``fc``) and our own heads are never loaded.
_SKIPPED_PREFIXES = ("fc.", "heads.")


def load_pretrained(model: BengaliResNet, path: str | Path) -> None:
    """Load backbone weights of a torchvision or timm ResNet checkpoint into ``model``, by name.

    An RGB stem is summed over its input channels for a one-channel model. The heads keep
    their fresh initialisation. Raises BengaliaiError unless every backbone tensor is found
    with the right shape and nothing else but the classifier is left over.
    """
    state = _read_state_dict(Path(path))
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("heads.")}
    loaded: dict[str, Tensor] = {}
    unexpected: list[str] = []
    mismatched: dict[str, str] = {}
    for key, value in state.items():
        if key.startswith(_SKIPPED_PREFIXES):
            continue
        if key not in own:
            unexpected.append(key)
            continue
        if key == "conv1.weight" and value.ndim == 4 and value.shape[1] == 3 and own[key].shape[1] == 1:
            # timm's adapt_input_conv: a gray image is R = G = B, so the summed kernel gives the
            # same response as the RGB kernel on the gray image repeated three times.
            log.info("%s: summing the RGB stem kernel %s to one channel", path, tuple(value.shape))
            value = value.sum(dim=1, keepdim=True)
        if value.shape != own[key].shape:
            mismatched[key] = f"{key}: checkpoint {tuple(value.shape)}, model {tuple(own[key].shape)}"
            continue
        loaded[key] = value
    # Checkpoints saved before PyTorch 0.4.1 (torchvision's own ResNets) lack the BN counters.
    missing = [k for k in own if k not in loaded and k not in mismatched
               and not k.endswith("num_batches_tracked")]
    if unexpected or mismatched or missing:
        groups = {"shape mismatch": list(mismatched.values()), "missing": missing, "unexpected": unexpected}
        problems = [f"{label} ({len(keys)}): {', '.join(keys[:8])}{', ...' * (len(keys) > 8)}"
                    for label, keys in groups.items() if keys]
        raise BengaliaiError(
            f"{path}: not a checkpoint of {model.config.arch} (base width {model.config.base_width}, "
            f"{model.config.in_chans} input channel(s)); " + "; ".join(problems)
        )
    model.load_state_dict(loaded, strict=False)
    log.info("%s: loaded %d backbone tensors into %s; heads freshly initialised",
             path, len(loaded), model.config.arch)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """The flat state dict of a checkpoint file, unwrapped and without training-script prefixes."""
    if not path.is_file():
        raise BengaliaiError(f"pretrained checkpoint not found: {path}")
    try:
        data = _read_safetensors(path) if path.suffix == ".safetensors" else torch.load(
            path, map_location="cpu", weights_only=True)
    except BengaliaiError:
        raise
    except Exception as error:  # noqa: BLE001 - torch.load raises many kinds; the user needs one message
        raise BengaliaiError(f"{path}: cannot read as a PyTorch checkpoint: {error}") from None
    while isinstance(data, Mapping) and not _is_state_dict(data):
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(data.get(k), Mapping)), None)
        if wrapper is None:
            raise BengaliaiError(f"{path}: no state dict found; top-level keys: {', '.join(map(str, data))}")
        data = data[wrapper]
    if not isinstance(data, Mapping):
        raise BengaliaiError(f"{path}: expected a state dict, got {type(data).__name__}")
    state = {}
    for key, value in data.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        state[key] = value
    return state


def _is_state_dict(data: Mapping) -> bool:
    return len(data) > 0 and all(isinstance(v, Tensor) for v in data.values())


_SAFETENSORS_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    """A .safetensors file (timm's weights on the Hugging Face hub) without the safetensors package."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    body = bytearray(raw[8 + size :])
    state = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise BengaliaiError(f"{path}: tensor {key} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        flat = torch.frombuffer(body[start:end] or bytearray(1), dtype=torch.uint8)[: end - start]
        state[key] = flat.view(_SAFETENSORS_DTYPES[info["dtype"]]).reshape(info["shape"]).clone()
    return state
