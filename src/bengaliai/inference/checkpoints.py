"""The folds of a run an ensemble is built from: their checkpoints, their training input, the loaded models.

``fold_checkpoints`` picks each requested fold's ``best.pt`` and refuses folds trained on inputs
that changed since or that differ between folds; ``training_input`` is the input folder a fold was
trained on (the default test input and the source of the class counts); ``load_models`` loads the
folds on the device, falling back to the CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from bengaliai.compute.device import resolve_device
from bengaliai.core.errors import BengaliaiError
from bengaliai.data.runinfo import CONFIG_YAML, check_ensemble_inputs, fold_files, is_fold_dir_name, read_run_config
from bengaliai.inference.ensemble import FoldModel, InferenceConfig, load_fold_model

log = logging.getLogger(__name__)


def fold_checkpoints(experiment_dir: Path, folds: str = "all") -> list[Path]:
    """``best.pt`` of each requested fold of ``runs/<experiment>`` (``all``: every trained fold).

    Refuses folds whose train.csv or folds file changed since they were trained, and folds trained
    on different ones (runinfo.check_ensemble_inputs): their out-of-fold figures and tuned alpha
    would not describe the ensemble.
    """
    experiment_dir = Path(experiment_dir)
    found = fold_files(experiment_dir, "best.pt")
    if not found:
        hint = " (pass runs/<experiment>, not a fold folder)" if is_fold_dir_name(experiment_dir.name) else ""
        raise BengaliaiError(f"{experiment_dir}: no fold<K>/best.pt here{hint}; train with `bengaliai train` first")
    if folds == "all":
        wanted = sorted(found)
    else:
        try:
            wanted = [int(part) for part in folds.split(",")]
        except ValueError:
            raise BengaliaiError(f"--folds {folds!r}: expected 'all' or fold numbers such as 0 or 0,2") from None
    missing = [k for k in wanted if k not in found]
    if missing:
        raise BengaliaiError(f"--folds {folds}: {experiment_dir} has no best.pt for fold(s) {missing}; trained: {sorted(found)}")
    check_ensemble_inputs([found[k].parent for k in wanted])
    return [found[k] for k in wanted]


def load_models(checkpoints: Sequence[Path], config: InferenceConfig) -> tuple[list[FoldModel], torch.device]:
    # A GPU this torch cannot run on falls back to the CPU: a slow submission beats none.
    device = resolve_device(config.device, fallback_to_cpu=True)
    return [load_fold_model(path, device, config.channels_last) for path in checkpoints], device


def training_input(checkpoint: Path) -> str:
    """The input folder the fold of ``checkpoint`` was trained on (from its run's config.yaml)."""
    config = read_run_config(checkpoint.parent)
    try:
        return str(config["data"]["input"])
    except (KeyError, TypeError):
        raise BengaliaiError(f"{checkpoint.parent / CONFIG_YAML}: cannot read the run's input folder; pass --input") from None
