"""The classifier: a ResNet-family backbone with one linear head per grapheme component.

``ModelConfig`` says what to build, ``build_model`` builds it (with ImageNet backbone weights through
``pretrained`` when asked) and ``BengaliResNet`` is the model: ``resnet``'s backbone, global average
pool, dropout, and one head per output (the three components, then the auxiliary ``grapheme`` head).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from bengaliai.core.competition import COMPONENTS, N_CLASSES, seen_graphemes
from bengaliai.core.errors import BengaliaiError
from bengaliai.model.pretrained import load_pretrained
from bengaliai.model.resnet import ARCHITECTURES, ResNet, replace_batchnorm

log = logging.getLogger(__name__)

AUX_HEAD = "grapheme"


@dataclass(frozen=True)
class ModelConfig:
    """What to build: architecture, input channels, heads, and an optional ImageNet checkpoint.

    ``base_width`` is the width of the stem and the first stage (64 in every published model;
    smaller for tests and quick CPU runs): every channel count scales by ``base_width / 64``, a
    ResNeXt's through its number of groups (so there a power of two: 8 gives 4 groups in place of
    32). ``zero_init_residual`` starts each block as the identity, which helps training from
    scratch (timm does it by default); pretrained weights overwrite it.
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
        problem = ARCHITECTURES[self.arch].width_problem(self.base_width)
        if problem is not None:
            raise BengaliaiError(f"model.base_width of {self.arch}: expected {problem}")
        if not 0.0 <= self.dropout < 1.0:
            raise BengaliaiError(f"model.dropout: expected 0 <= dropout < 1, got {self.dropout}")


def head_sizes(config: ModelConfig) -> dict[str, int]:
    """Output name -> number of classes, in the order ``forward`` returns them."""
    sizes = {name: N_CLASSES[name] for name in COMPONENTS}
    if config.aux_graphemes:
        sizes[AUX_HEAD] = len(seen_graphemes())
    return sizes


class BengaliResNet(ResNet):
    """ResNet features, global average pool, dropout, and one linear head per output."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config.arch, config.in_chans, config.base_width)
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(self.num_features, n) for name, n in head_sizes(config).items()}
        )
        if config.norm == "group":
            replace_batchnorm(self)
        self.init_weights(config.zero_init_residual)

    def forward_head(self, features: Tensor) -> dict[str, Tensor]:
        """Logits per output name: the three components, then ``grapheme`` if enabled."""
        features = self.dropout(features)
        return {name: head(features) for name, head in self.heads.items()}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.forward_head(self.forward_features(x))


def build_model(config: ModelConfig) -> BengaliResNet:
    """A freshly initialised model, with ImageNet backbone weights if ``config.pretrained``."""
    model = BengaliResNet(config)
    if config.pretrained is not None:
        load_pretrained(model, config.pretrained)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("model %s, %d input channel(s), %.2f M parameters, heads %s",
             config.arch, config.in_chans, n_params / 1e6, head_sizes(config))
    return model
