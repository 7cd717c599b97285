"""Kaggle itself: the competition download and the offline inference kernel.

Modules: ``download`` (``bengaliai download``), ``kernel`` (``bengaliai kernel``: the kernel folder,
its weights dataset), ``bundle`` (the kernel's script with this package's sources embedded),
``push`` (``--push``: the uploads to Kaggle), ``kernel_runtime`` (what the kernel runs offline;
bundled with the subpackages in ``bundle.KERNEL_PACKAGES``).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "build_kernel": "kernel",
    "push_kernel": "push",
    "run_kernel": "kernel_runtime",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
