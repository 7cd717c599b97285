"""Training folds: the input assembled, batches and augmentation, the loss and loop, optimiser and EMA.

Modules: ``train`` (``bengaliai train``: ``TrainConfig``, ``train(config, folds)``, the fold loop),
``run_folder`` (what each epoch writes to the run folder, what a resume restores), ``inputs``
(``DataConfig``; everything one fold trains on, put together once: the main split, the extra sources,
the batch plan), ``sources`` (a source's cache and labels read, an extra source checked), ``loader``
(the memory-mapped cache, batch samplers and loaders), ``augment`` / ``augment_device`` (per image on
the CPU or per batch on the device), ``engine`` (loss, one epoch, evaluation), ``step_watch`` (the loss and fp16
skipped steps watched on the device, read only at check points), ``optim`` (optimiser, schedule),
``ema`` (the weight average, updated on the device).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "train",
    "train_fold": "train",
    "run_dir_of": "train",
    "DataConfig": "inputs",
    "fold_inputs": "inputs",
    "AugmentConfig": "augment",
    "OptimConfig": "optim",
    "LossConfig": "engine",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
