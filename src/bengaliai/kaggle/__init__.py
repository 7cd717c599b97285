"""Kaggle itself: the competition download, the offline inference kernel and the training kernel.

Modules: ``download`` (``bengaliai download``), ``kernel`` (``bengaliai kernel``: the kernel folder,
its weights dataset), ``bundle`` (the kernel's script with this package's sources embedded),
``push`` (``--push``: the uploads to Kaggle), ``kernel_runtime`` (what the kernel runs offline;
bundled with the subpackages in ``bundle.KERNEL_PACKAGES``), ``train_kernel`` (``bengaliai kernel
--train``: a kernel that trains folds on Kaggle's GPUs), ``train_runtime`` (what it runs there),
``pull`` (``bengaliai pull``: its output brought into runs/), ``inputs`` (finding things under
/kaggle/input).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "build_kernel": "kernel",
    "build_train_kernel": "train_kernel",
    "pull_output": "pull",
    "push_kernel": "push",
    "push_train_kernel": "push",
    "run_kernel": "kernel_runtime",
    "run_training": "train_runtime",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
