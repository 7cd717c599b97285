"""Trained folds as predictors: load their weights and turn preprocessed uint8 images into probabilities.

Shared by ``bengaliai predict`` and the Kaggle kernel (which bundles this package), so both compute
the same numbers. A fold model is rebuilt from the configuration saved in its checkpoint and gets
the weights that validation scored (the EMA's when EMA was on). The ensemble is the mean of the
softmax probabilities over folds and test-time views; views are small shifts and scales applied on
the device (no flips: a mirrored Bengali letter is another letter or none). For routing, the auxiliary
grapheme head's probabilities and logsumexp are averaged the same way and summarised
(bengaliai.evaluation.routing.aux_summary).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from bengaliai.compute.precision import PRECISIONS, resolve_precision
from bengaliai.core.competition import COMPONENTS
from bengaliai.core.config import from_dict
from bengaliai.core.errors import BengaliaiError
from bengaliai.evaluation.routing import AUX_KEYS, TOP_K, aux_summary
from bengaliai.model.checkpoint import load_checkpoint
from bengaliai.model.classifier import AUX_HEAD, ModelConfig, build_model

log = logging.getLogger(__name__)

# Test-time views as (shift x, shift y, scale); shifts are fractions of the image side. The
# first is the image itself; ``tta=N`` uses the first N. The crops have a margin around the
# ink, so these moves never push ink out of the frame.
TTA_VIEWS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 1.0),
    (0.0, 0.0, 0.92),
    (0.04, 0.0, 1.0),
    (-0.04, 0.0, 1.0),
    (0.0, 0.04, 1.0),
    (0.0, -0.04, 1.0),
    (0.0, 0.0, 1.08),
    (0.03, 0.03, 0.96),
)


@dataclass(frozen=True)
class InferenceConfig:
    """How the ensemble runs; the kernel receives the same settings as ``bengaliai predict``."""

    batch_size: int = 256
    # auto: what the hardware computes natively (bengaliai.compute.precision): bf16 on GPUs from compute
    # capability 8.0 and CPUs with AVX512-BF16/AMX, fp16 on 7.x GPUs (T4, V100), fp32 elsewhere.
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    channels_last: bool = True
    device: str = "auto"
    tta: int = 1
    # torch.compile with frozen weights: faster after a warm-up of a minute or so on a CPU.
    compile: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise BengaliaiError(f"batch_size must be positive, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise BengaliaiError(f"precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not 1 <= self.tta <= len(TTA_VIEWS):
            raise BengaliaiError(f"tta: expected 1..{len(TTA_VIEWS)} views, got {self.tta}")


@dataclass
class FoldModel:
    """One fold's network in eval mode with what it needs to read images."""

    fold: int
    model: torch.nn.Module
    preprocess: dict[str, Any]
    mean: float
    std: float
    score: float
    source: Path


def slim_state(checkpoint: dict[str, Any], source: Path) -> dict[str, Any]:
    """What inference needs from a training checkpoint: no optimizer, no history (a third the size).

    A slim checkpoint passes through unchanged. ``source`` names the file in the error.
    """
    keys = ("config", "fold", "epoch", "best_score", "weights", "preprocess")
    missing = [key for key in keys if key not in checkpoint]
    if missing:
        raise BengaliaiError(f"{source}: checkpoint lacks {', '.join(missing)}; was it written by `bengaliai train`?")
    return {key: checkpoint[key] for key in keys}


def load_fold_model(path: Path, device: torch.device, channels_last: bool = True) -> FoldModel:
    """Rebuild the network of a checkpoint (``best.pt`` or a slim kernel copy) with its weights."""
    state = slim_state(load_checkpoint(path, "cpu"), path)
    try:
        model_config = from_dict(ModelConfig, state["config"]["model"], where=f"{path}: model")
        data = state["config"]["data"]
    except KeyError as error:
        raise BengaliaiError(f"{path}: checkpoint config lacks {error}; was it written by `bengaliai train`?") from None
    # The ImageNet file that initialised training is not needed (and not on a Kaggle kernel).
    model = build_model(dataclasses.replace(model_config, pretrained=None))
    model.load_state_dict(state["weights"])
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return FoldModel(
        fold=int(state["fold"]), model=model, preprocess=dict(state["preprocess"]), mean=float(data["mean"]),
        std=float(data["std"]), score=float(state["best_score"]), source=Path(path),
    )


def check_compatible(models: list[FoldModel]) -> None:
    """All folds must read the same pixels: one preprocessing and one normalisation for the ensemble."""
    first = models[0]
    for other in models[1:]:
        if other.preprocess != first.preprocess or (other.mean, other.std) != (first.mean, first.std):
            raise BengaliaiError(
                f"fold {other.fold} was trained on other inputs than fold {first.fold} "
                f"({other.preprocess}, mean {other.mean}, std {other.std} against {first.preprocess}, "
                f"mean {first.mean}, std {first.std}); predict them separately and blend the probabilities"
            )


def view(images: torch.Tensor, shift_x: float, shift_y: float, scale: float) -> torch.Tensor:
    """Shift and scale (B, 1, H, W) images in [0, 1] about their centre; background (0) fills in."""
    if (shift_x, shift_y, scale) == (0.0, 0.0, 1.0):
        return images
    # affine_grid maps output to input coordinates in [-1, 1]: the inverse of the wanted motion.
    theta = torch.tensor(
        [[1.0 / scale, 0.0, -2.0 * shift_x / scale], [0.0, 1.0 / scale, -2.0 * shift_y / scale]],
        dtype=images.dtype, device=images.device,
    ).expand(len(images), 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class Ensemble:
    """Mean softmax probabilities of several fold models over ``tta`` views, batch by batch.

    With ``aux``, each batch also gives routing.AUX_KEYS of the mean grapheme-head probabilities and
    the mean logsumexp of its logits (every model must have the head).
    """

    def __init__(
        self, models: list[FoldModel], config: InferenceConfig, device: torch.device, aux: bool = False
    ) -> None:
        if not models:
            raise BengaliaiError("no fold models to predict with")
        check_compatible(models)
        without = [m.fold for m in models if AUX_HEAD not in getattr(m.model, "heads", {})]
        if aux and without:
            raise BengaliaiError(f"routing needs the auxiliary grapheme head, which fold(s) {without} lack "
                                 "(trained without model.aux_graphemes=true); predict with routing off")
        self.models, self.config, self.device, self.aux = models, config, device, aux
        self.precision = resolve_precision(config.precision, device)
        self.mean, self.std = models[0].mean, models[0].std
        self.networks = [self._compiled(m.model) if config.compile else m.model for m in models]
        log.info(
            "ensemble of %d fold(s) %s, %d view(s), %s on %s (%s)",
            len(models), [m.fold for m in models], config.tta, self.precision.name, device, self.precision.reason,
        )

    def _compiled(self, model: torch.nn.Module) -> torch.nn.Module:
        # Freezing folds weights into the graph (constant folding, prepacked kernels): inference only.
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        return torch.compile(model)

    @torch.inference_mode()
    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """(n, H, W) uint8 preprocessed images -> float32 probabilities (n, classes) per component.

        With ``aux``, also the routing arrays of routing.AUX_KEYS.
        """
        out = {name: np.empty((len(images), 0), dtype=np.float32) for name in COMPONENTS}
        if self.aux:
            out |= {AUX_KEYS[0]: np.empty((0, TOP_K), np.int16), AUX_KEYS[1]: np.empty((0, TOP_K), np.float32),
                    AUX_KEYS[2]: np.empty(0, np.float32)}
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(images), self.config.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + self.config.batch_size]))
            parts.append(self._predict_batch(batch))
        if parts:
            out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        return out

    def _predict_batch(self, batch: torch.Tensor) -> dict[str, np.ndarray]:
        x01 = batch.to(self.device, non_blocking=True).unsqueeze(1).float().div_(255.0)
        total: dict[str, torch.Tensor] = {}
        heads = [*COMPONENTS, AUX_HEAD] if self.aux else COMPONENTS
        for shift_x, shift_y, scale in TTA_VIEWS[: self.config.tta]:
            x = view(x01, shift_x, shift_y, scale).sub(self.mean).div_(self.std)
            if self.config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for network in self.networks:
                with torch.autocast(self.device.type, dtype=self.precision.dtype, enabled=self.precision.autocast):
                    logits = network(x)
                for name in heads:
                    p = torch.softmax(logits[name].float(), dim=1)
                    total[name] = total[name] + p if name in total else p
                if self.aux:
                    lse = torch.logsumexp(logits[AUX_HEAD].float(), dim=1)
                    total["lse"] = total["lse"] + lse if "lse" in total else lse
        n = len(self.networks) * self.config.tta
        out = {name: (total[name] / n).cpu().numpy() for name in COMPONENTS}
        if self.aux:
            out |= aux_summary(total[AUX_HEAD] / n, total["lse"] / n)
        return out
