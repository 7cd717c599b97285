"""Which device and which precision to compute on."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to run in bf16: as asked, or for ``auto`` where the hardware computes it natively.

    On a CPU without AVX512-BF16 or AMX, bf16 is emulated and slower than fp32.
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False
