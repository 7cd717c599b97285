"""Where and how to compute: the device, the autocast precision, CPU threads and torchrun processes.

Modules: ``device`` (CPU or CUDA, and whether this torch runs on the GPU), ``precision`` (one
fp32/bf16/fp16 policy for training, predict and the kernel), ``threads`` (thread pools sized to the
CPUs that are free), ``distributed`` (torchrun set-up and gathers).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "resolve_device": "device",
    "resolve_precision": "precision",
    "Precision": "precision",
    "plan_threads": "threads",
    "apply_threads": "threads",
    "init_distributed": "distributed",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
