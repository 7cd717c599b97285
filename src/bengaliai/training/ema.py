"""The exponential moving average of a model's weights, updated on the device without waiting for it.

torch's ``AveragedModel`` keeps its update count ``n_averaged`` in a CPU tensor and copies it to the
GPU at every update: a blocking copy, so every training step waited for the GPU to finish the one
before. ``WeightEma`` computes the same average (``torch._foreach_lerp_`` over the floating
parameters and buffers, as ``get_ema_multi_avg_fn`` with ``use_buffers=True`` does) and keeps the
count as a Python int, so an update only queues kernels.

Its state dict has AveragedModel's layout (``module.<name>`` and ``n_averaged``): checkpoints
written with either one resume with the other.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch

from bengaliai.core.errors import BengaliaiError

# AveragedModel's name for its update count, kept in the state dict so old and new checkpoints read both ways.
COUNT_KEY = "n_averaged"
_PREFIX = "module."


class WeightEma:
    """A copy of a model whose parameters and buffers follow the model's by an exponential moving average.

    ``update_parameters(model)`` after each optimiser step: the first copies the model (an average
    of one), each later one moves the copy ``1 - decay`` of the way towards it. Integer buffers
    (BatchNorm's ``num_batches_tracked``) are copied: an average of step counts means nothing.
    ``module`` is the averaged model, to evaluate and to save as the weights to predict with.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise BengaliaiError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update_parameters(self, model: torch.nn.Module) -> None:
        """Average ``model``'s current weights into the copy (``model`` may be wrapped by DDP or torch.compile)."""
        averaged = [*self.module.parameters(), *self.module.buffers()]
        current = [t.detach() for t in (*model.parameters(), *model.buffers())]
        if len(averaged) != len(current):
            raise BengaliaiError(f"EMA: the model has {len(current)} parameters and buffers, its average {len(averaged)}")
        if self.updates == 0:
            torch._foreach_copy_(averaged, current)
        else:
            floating = [i for i, t in enumerate(averaged) if t.is_floating_point() or t.is_complex()]
            whole = [i for i, t in enumerate(averaged) if not (t.is_floating_point() or t.is_complex())]
            if floating:
                torch._foreach_lerp_([averaged[i] for i in floating], [current[i] for i in floating], 1.0 - self.decay)
            if whole:
                torch._foreach_copy_([averaged[i] for i in whole], [current[i] for i in whole])
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``n_averaged`` (a CPU tensor, as AveragedModel saves it) and the averaged model's ``module.<name>``."""
        state: dict[str, Any] = {COUNT_KEY: torch.tensor(self.updates, dtype=torch.long)}
        return state | {_PREFIX + name: value for name, value in self.module.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from ``state_dict()``'s output or an ``AveragedModel``'s (the same keys)."""
        unknown = sorted(k for k in state if k != COUNT_KEY and not k.startswith(_PREFIX))
        if COUNT_KEY not in state or unknown:
            found = f"unexpected {', '.join(unknown[:5])}" if unknown else f"no {COUNT_KEY}"
            raise BengaliaiError(f"EMA state: expected {COUNT_KEY} and {_PREFIX}<name> keys, {found}")
        self.module.load_state_dict({k.removeprefix(_PREFIX): v for k, v in state.items() if k.startswith(_PREFIX)})
        self.updates = int(state[COUNT_KEY])
