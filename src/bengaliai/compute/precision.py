"""One precision policy for training, prediction and the Kaggle kernel: which autocast dtype, and why.

``auto`` picks what the hardware computes natively:

- CUDA compute capability >= 8.0 (A100, L4, H100, ...): bf16 autocast.
- CUDA 7.x (T4, V100): fp16 autocast with a ``GradScaler`` when training. cuDNN has no bf16
  convolutions below sm80, and ``torch.cuda.is_bf16_supported()`` still says True there (it counts
  emulation), so asking torch is not enough: bf16 would silently take a slow path.
- CUDA below 7.0 (P100): fp32; its half-precision throughput gains nothing for this model.
- CPU: bf16 only where the CPU has native bf16 instructions (``avx512_bf16`` or ``amx_bf16`` in its
  flags); elsewhere fp32 (emulated bf16 measured at 10 img/s against 18 in fp32 for a ResNet-18).
- Other devices (mps): fp32.

An explicit choice is kept, with a warning where the hardware cannot do it well. The resolved
choice and its reason go into the run folder.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

log = logging.getLogger(__name__)

PrecisionName = Literal["auto", "bf16", "fp16", "fp32"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")
_NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@dataclass(frozen=True)
class Precision:
    """The resolved precision: the autocast dtype (None: fp32), whether a GradScaler is needed, and why."""

    name: Literal["bf16", "fp16", "fp32"]
    reason: str

    @property
    def dtype(self) -> torch.dtype | None:
        return _DTYPES[self.name]

    @property
    def autocast(self) -> bool:
        return self.dtype is not None

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range."""
        return self.name == "fp16"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


@functools.cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The instruction-set flags of the first CPU (empty where /proc/cpuinfo is not readable)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def cuda_capability(device: torch.device) -> tuple[int, int]:
    """The compute capability of a CUDA device, e.g. (8, 0) for an A100."""
    return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def _auto(device: torch.device) -> Precision:
    if device.type == "cuda":
        major, minor = cuda_capability(device)
        card = f"compute capability {major}.{minor}"
        if major >= 8:
            return Precision("bf16", f"{card}: native bf16 tensor cores")
        if major == 7:
            return Precision("fp16", f"{card}: fp16 tensor cores, no bf16 convolutions below 8.0")
        return Precision("fp32", f"{card}: no tensor cores, half precision gains nothing")
    if device.type == "cpu":
        native = sorted(_NATIVE_BF16_FLAGS & cpu_flags())
        if native:
            return Precision("bf16", f"CPU with native bf16 ({', '.join(native)})")
        return Precision("fp32", "CPU without avx512_bf16 or amx_bf16: bf16 would be emulated and slower")
    return Precision("fp32", f"{device.type}: fp32 (no tested half-precision path)")


def _weakness(name: str, device: torch.device) -> str | None:
    """Why the hardware cannot do an explicit choice well, or None."""
    if device.type == "cuda":
        major, minor = cuda_capability(device)
        if name == "bf16" and major < 8:
            return (f"compute capability {major}.{minor} has no bf16 convolutions in cuDNN: every convolution "
                    "falls back to a slow path; use precision=auto (fp16 with loss scaling) or fp16")
        if name == "fp16" and major < 7:
            return f"compute capability {major}.{minor} has no fp16 tensor cores: fp16 will not be faster than fp32"
    elif device.type == "cpu":
        if name == "bf16" and not _NATIVE_BF16_FLAGS & cpu_flags():
            return "this CPU has no native bf16 (avx512_bf16/amx_bf16): bf16 is emulated and slower than fp32"
        if name == "fp16":
            return "fp16 on a CPU is emulated on most CPUs and slower than fp32; use precision=auto"
    elif name != "fp32":
        return f"{name} on {device.type} is untested here"
    return None


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """The precision to compute in on ``device`` for ``requested`` (auto, bf16, fp16 or fp32)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return _auto(device)
    weakness = _weakness(requested, device)
    if weakness is not None:
        log.warning("precision %s as asked, but %s", requested, weakness)
        return Precision(requested, f"asked for; {weakness}")  # type: ignore[arg-type]
    return Precision(requested, "asked for")  # type: ignore[arg-type]


def grad_scaler(precision: Precision, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 training (None otherwise); its state belongs in the checkpoint."""
    if not precision.needs_scaler:
        return None
    return torch.amp.GradScaler(device.type)
