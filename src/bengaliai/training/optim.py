"""Optimiser, learning-rate schedule (warmup then cosine, or one-cycle) and weight EMA."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from bengaliai.core.errors import BengaliaiError
from bengaliai.training.ema import WeightEma


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule; the schedule steps once per batch."""

    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 5.0
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        found = self._problems()
        if found:
            raise BengaliaiError("\n".join(found))

    def _problems(self) -> list[str]:
        found = []
        if not self.lr > 0:
            found.append(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            found.append(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            found.append(f"optim.momentum must be in [0, 1), got {self.momentum}")
        if self.warmup_epochs < 0:
            found.append(f"optim.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if not 0 <= self.min_lr_ratio <= 1:
            found.append(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip < 0:
            found.append(f"optim.grad_clip must be >= 0 (0: off), got {self.grad_clip}")
        if not 0 <= self.ema_decay < 1:
            found.append(f"optim.ema_decay must be in [0, 1) (0: off), got {self.ema_decay}")
        return found


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases and normalisation weights (the usual ResNet recipe).

    On CUDA AdamW is the fused kernel: one launch for all parameters, and with a GradScaler it
    skips an overflowed step on the device instead of reading the overflow flag on the host.
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    fused = all(p.device.type == "cuda" for p in decay + no_decay) and bool(decay + no_decay)
    return torch.optim.AdamW(groups, lr=config.lr, fused=fused or None)


def lr_factor(step: int, total_steps: int, warmup_steps: int, config: OptimConfig) -> float:
    """The multiplier of the base learning rate at ``step`` (0-based)."""
    if config.schedule == "constant":
        return 1.0 if step >= warmup_steps else (step + 1) / max(warmup_steps, 1)
    if config.schedule == "onecycle":
        # Linear up over the first 30%, cosine down to min_lr_ratio: fast.ai's one-cycle shape.
        peak = max(int(0.3 * total_steps), 1)
        if step < peak:
            return config.min_lr_ratio + (1 - config.min_lr_ratio) * step / peak
        progress = (step - peak) / max(total_steps - peak, 1)
    else:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-batch LambdaLR following ``lr_factor``."""
    total = max(steps_per_epoch * epochs, 1)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup, config))


def build_ema(model: torch.nn.Module, decay: float) -> WeightEma | None:
    """An exponential moving average of the weights and BN buffers (``ema.WeightEma``), or None when decay is 0."""
    if decay <= 0:
        return None
    return WeightEma(model, decay)
