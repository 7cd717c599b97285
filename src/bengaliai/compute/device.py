"""Which device to compute on, and whether the installed torch can run on its GPU at all.

A torch build carries GPU code for a list of architectures (``torch.cuda.get_arch_list()``). On a
card outside it (a P100, sm_60, with a torch built from sm_70 up, as on current Kaggle images) the
first kernel launch fails with "no kernel image is available for execution on the device", deep
inside the first forward pass. ``unsupported_gpu`` finds that out before any work and says what to
do; training stops with that message, prediction falls back to the CPU with a loud warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import torch

from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

_ARCH = re.compile(r"(sm|compute)_(\d+)([a-z]?)")


def arch_supported(capability: tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Whether a torch built for ``arch_list`` runs on a card of ``capability``.

    A cubin ``sm_XY`` runs on cards of the same major version X and minor >= Y; PTX
    (``compute_XY``) is compiled at load time for any card of capability >= XY. Arch-specific
    targets (``sm_90a``) run only on their exact capability.
    """
    card = capability[0] * 10 + capability[1]
    for arch in arch_list:
        match = _ARCH.fullmatch(arch)
        if match is None:
            continue
        kind, number, suffix = match.group(1), int(match.group(2)), match.group(3)
        if suffix:
            if kind == "sm" and number == card:
                return True
            continue
        if kind == "sm" and number // 10 == capability[0] and number <= card:
            return True
        if kind == "compute" and number <= card:
            return True
    return False


def unsupported_gpu(name: str, capability: tuple[int, int], arch_list: Sequence[str], version: str) -> str | None:
    """The message for a card this torch build has no code for, or None when it is supported."""
    if not arch_list or arch_supported(capability, arch_list):
        return None
    major, minor = capability
    return (
        f"the GPU {name} (compute capability {major}.{minor}, sm_{major}{minor}) is not supported by the "
        f"installed torch {version}, which was built for {', '.join(arch_list)}: every CUDA kernel would fail "
        "with 'no kernel image is available'. Use another GPU (on Kaggle: the T4 x2 accelerator, not the P100), "
        "install a torch build that includes this architecture, or run on the CPU with --device cpu"
    )


def _check_cuda(device: torch.device) -> str | None:
    index = device.index if device.index is not None else torch.cuda.current_device()
    return unsupported_gpu(
        torch.cuda.get_device_name(index), tuple(torch.cuda.get_device_capability(index)),  # type: ignore[arg-type]
        torch.cuda.get_arch_list(), torch.__version__,
    )


def resolve_device(name: str, fallback_to_cpu: bool = False) -> torch.device:
    """``auto`` picks cuda, then mps, then cpu. A GPU the installed torch cannot run on raises a
    BengaliaiError, or with ``fallback_to_cpu`` (prediction) gives a loud warning and the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
        elif torch.backends.mps.is_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise BengaliaiError(f"device {name!r}: {error}; expected cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BengaliaiError(f"device {name!r}: torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
        problem = _check_cuda(device)
        if problem is not None:
            if not fallback_to_cpu:
                raise BengaliaiError(problem)
            log.warning("!!! falling back to the CPU (much slower): %s", problem)
            return torch.device("cpu")
    return device
