"""Checkpoints written atomically and read back with clear errors, holding only tensors and plain values.

Checkpoints travel (Kaggle outputs, shared datasets), so they are read with ``weights_only=True``:
a file carrying pickled Python objects, which could run code when loaded, is refused. Checkpoints
written before the random states were stored as lists hold numpy's state as an array: exactly
numpy's array reconstruction is allowed for those.
"""

from __future__ import annotations

import pickle
import random
import re
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


# numpy's array reconstruction, as torch's docs allow it for weights_only loads, under the module names
# numpy 1 (numpy.core) and numpy 2 (numpy._core) pickle it with: the random state arrays of older checkpoints.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_NUMPY_ARRAYS = [
    (_RECONSTRUCT, "numpy.core.multiarray._reconstruct"), (_RECONSTRUCT, "numpy._core.multiarray._reconstruct"),
    np.ndarray, np.dtype, type(np.dtype(np.uint32)),
]
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error: ([^\n]+)")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``: tensors and plain values only (``weights_only``).

    ``mmap``: map the tensors from the file instead of reading them, to look at a large checkpoint's
    config or epoch quickly.
    """
    if not Path(path).exists():
        raise BengaliaiError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_NUMPY_ARRAYS):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        found = _REFUSED_GLOBAL.search(str(error))
        if found is None:
            detail = _UNPICKLER_ERROR.search(str(error))
            raise BengaliaiError(
                f"{path}: cannot read this checkpoint ({detail.group(1).strip() if detail else _first_line(error)})"
            ) from None
        raise BengaliaiError(
            f"{path}: refused: it holds pickled Python objects ({found.group(1)}), which can run code when loaded; "
            "only checkpoints of tensors and plain values are read"
        ) from None
    except Exception as error:  # a torn or foreign file: say which one
        raise BengaliaiError(f"{path}: cannot read this checkpoint ({_first_line(error)})") from None


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def rng_state() -> dict[str, Any]:
    """Every global random state that training touches (CUDA: the current device's only), as tensors and plain
    values: numpy's state array is saved as a list."""
    kind, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = (kind, key.tolist(), int(pos), int(has_gauss), float(cached_gaussian))
    state: dict[str, Any] = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
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
    device's entry is used when it exists. numpy's key may be a list or, in older checkpoints, an array.
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
