"""Checkpoints written atomically and read back with clear errors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bengaliai.errors import BengaliaiError
from bengaliai.fileio import atomic_path


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
    """Every global random state that training touches."""
    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
