"""The competition's files and what is derived from them once: labels, images, the cache, the folds, run facts.

Modules: ``labels`` (train.csv / test.csv checked), ``parquet_images`` (the image parquet format),
``preprocess`` (one preprocessing function for training and inference), ``prepare`` (parquet ->
uint8 .npy cache, ``bengaliai prepare``), ``folds`` (``bengaliai folds``), ``runinfo`` (run folders
that describe themselves, input fingerprints), ``supervision`` (which heads an extra source teaches
and its labels masked to match).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "read_train_labels": "labels",
    "read_test_rows": "labels",
    "PreprocessConfig": "preprocess",
    "preprocess_batch": "preprocess",
    "find_image_files": "prepare",
    "make_folds": "folds",
    "read_folds": "folds",
    "write_run_description": "runinfo",
    "mask_labels": "supervision",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
