"""Training folds: the input assembled, batches and augmentation, the loss and loop, optimiser and EMA.

Modules: ``train`` (``bengaliai train``: ``TrainConfig``, ``train(config, folds)``), ``sources`` (the
main split and the extra sources assembled for one fold), ``loader`` (the cache, batches),
``augment`` / ``augment_device`` (per image on the CPU or per batch on the device), ``engine`` (loss,
one epoch, evaluation), ``optim`` (optimiser, schedule, EMA).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "train",
    "train_fold": "train",
    "run_dir_of": "train",
    "DataConfig": "loader",
    "AugmentConfig": "augment",
    "OptimConfig": "optim",
    "LossConfig": "engine",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
