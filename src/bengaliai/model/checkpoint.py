"""Checkpoints written atomically and read back with clear errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import atomic_path


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary name, then rename: a crash never leaves a torn checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (our own files, so full unpickling is allowed)."""
    if not Path(path).exists():
        raise BengaliaiError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # a torn or foreign file: say which one
        raise BengaliaiError(f"{path}: cannot read this checkpoint ({error})") from None


def rng_state() -> dict[str, Any]:
    """Every global random state that training touches (CUDA: the current device's only)."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _byte_tensor(value: Any) -> torch.Tensor:
    # torch.set_rng_state takes only a CPU ByteTensor: a checkpoint read with map_location="cuda"
    # holds the saved state on the GPU, which used to crash every resume on a GPU.
    return torch.as_tensor(value).detach().to(device="cpu", dtype=torch.uint8)


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved, wherever its tensors were loaded to.

    Only the current CUDA device's state is restored: a run saved on a machine with more GPUs
    resumes on one with fewer. Older checkpoints hold a list (one state per GPU): the current
    device's entry is used when it exists.
    """
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(_byte_tensor(state["torch"]))
    cuda = state.get("cuda")
    if cuda is None or not torch.cuda.is_available():
        return
    current = torch.cuda.current_device()
    if isinstance(cuda, (list, tuple)):
        if current >= len(cuda):
            return
        cuda = cuda[current]
    torch.cuda.set_rng_state(_byte_tensor(cuda), current)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
