"""``bengaliai kernel``: build (and optionally push) an internet-off Kaggle kernel for an experiment.

The build folder holds two uploads:

- ``dataset/``: a Kaggle dataset with ``dataset-metadata.json``, one slim checkpoint per fold
  (weights, config, preprocessing; no optimizer state) and ``inference.json`` (the ensemble
  settings, the prior correction and the seen/unseen routing, resolved now so the kernel makes no
  decision of its own);
- ``kernel/``: ``kernel-metadata.json`` (competition source bengaliai-cv19, internet off, the
  dataset attached, GPU as asked) and ``inference.py``, a script that carries this package's
  sources as an embedded zip and needs nothing beyond what Kaggle's images ship (torch, numpy,
  pandas, pyarrow, OpenCV, PyYAML, tqdm); the script and its bundle are made by ``bundle``.

``--push`` uploads both with the ``kaggle`` package (dataset first, then the kernel; ``push``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from bengaliai import __version__
from bengaliai.core.competition import COMPETITION
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import atomic_path, ensure_writable, write_json
from bengaliai.data.runinfo import git_commit, read_run_config
from bengaliai.evaluation.oof_report import resolve_routing
from bengaliai.inference.checkpoints import fold_checkpoints, training_input
from bengaliai.inference.ensemble import InferenceConfig, slim_state
from bengaliai.inference.predict import DEFAULT_BLOCK_IMAGES
from bengaliai.inference.prior import resolve_prior
from bengaliai.kaggle.bundle import bundle_package, kernel_script
from bengaliai.kaggle.kernel_runtime import INFERENCE_JSON
from bengaliai.model.checkpoint import load_checkpoint

log = logging.getLogger(__name__)

KERNEL_SCRIPT = "inference.py"
KERNEL_METADATA = "kernel-metadata.json"
DATASET_METADATA = "dataset-metadata.json"
PLACEHOLDER_USER = "your-kaggle-username"
# Kaggle's GPU machine shapes: the values the SaveKernel API documents for ``machine_shape``
# (kagglesdk 0.1.38, kernels/types/kernels_api_service.py; kaggle 2.2.4 kernels_push passes the
# value through unchecked). T4 by default: NvidiaTeslaT4 is the editor's "GPU T4 x2", two T4s (a single
# T4 is not offered; Kaggle/kaggle-cli PR #1198), and a P100 (sm_60) cannot run the torch of Kaggle's
# current image ("no kernel image is available for execution on the device").
DEFAULT_MACHINE_SHAPE = "NvidiaTeslaT4"
GPU_MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaP100")
_KERNEL_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9][a-z0-9-]{4,}")


@dataclass(frozen=True)
class KernelBuild:
    """Where the build put the two uploads and what they are called on Kaggle."""

    kernel_dir: Path
    dataset_dir: Path
    kernel_id: str
    dataset_id: str
    folds: tuple[int, ...]

    def summary(self) -> str:
        return "\n".join(
            [
                f"kernel:  {self.kernel_dir} ({self.kernel_id})",
                f"dataset: {self.dataset_dir} ({self.dataset_id}, folds {', '.join(map(str, self.folds))})",
                f"push:    kaggle datasets create -p {self.dataset_dir} --dir-mode skip && "
                f"kaggle kernels push -p {self.kernel_dir}   (or bengaliai kernel ... --push)",
            ]
        )


def slugify(text: str) -> str:
    """Kaggle's slug of a title: lower case, runs of other characters become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def check_kernel_ref(kernel: str) -> str:
    """``kernel`` if it names a Kaggle kernel as OWNER/SLUG (as in kaggle.com/code/OWNER/SLUG), else one clear error.

    The kaggle client asks the same of a slug: at least five characters; Kaggle's slugs are lower case.
    """
    if not _KERNEL_REF.fullmatch(kernel):
        raise BengaliaiError(
            f"kernel {kernel!r}: expected OWNER/SLUG as in kaggle.com/code/OWNER/SLUG (a slug is at least 5 lower-case "
            "letters, digits or hyphens), e.g. someone/bengaliai-resnet34-train"
        )
    return kernel


def default_user() -> str:
    """The Kaggle user name from the environment or ~/.kaggle/kaggle.json, else a placeholder."""
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    try:
        return str(json.loads((config_dir / "kaggle.json").read_text(encoding="utf-8"))["username"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return PLACEHOLDER_USER


def build_kernel(
    experiment_dir: Path,
    out_dir: Path,
    folds: str = "all",
    config: InferenceConfig = InferenceConfig(),
    alpha: float | None = None,
    user: str | None = None,
    gpu: bool = False,
    block_images: int = DEFAULT_BLOCK_IMAGES,
    machine_shape: str | None = None,
    routing: str = "auto",
) -> KernelBuild:
    """Write ``out_dir/kernel`` and ``out_dir/dataset`` for the chosen folds of ``runs/<experiment>``.

    ``routing`` (auto|off) is resolved now, as ``bengaliai predict`` resolves it, and written to
    inference.json with the component path's alpha.

    With ``gpu`` the metadata asks for ``machine_shape`` (default NvidiaTeslaT4); without it,
    no machine shape is written and asking for one is an error.
    """
    experiment_dir, out_dir = Path(experiment_dir), Path(out_dir)
    shape = resolve_machine_shape(gpu, machine_shape)
    checkpoints = fold_checkpoints(experiment_dir, folds)
    for path in (out_dir / "dataset" / INFERENCE_JSON, out_dir / "kernel" / KERNEL_SCRIPT):
        ensure_writable(path)  # an unwritable --out fails before any checkpoint is read
    has_head = all(read_run_config(path.parent).get("model", {}).get("aux_graphemes", False) for path in checkpoints)
    folds_used = [int(path.parent.name.removeprefix("fold")) for path in checkpoints]
    tuned = resolve_routing(experiment_dir, routing, has_head, folds_used)
    rule = tuned[0] if tuned is not None else None
    train_dir = Path(training_input(checkpoints[0]))
    prior = resolve_prior(experiment_dir, alpha, train_dir, checkpoints, routed=rule is not None)
    user = user or default_user()
    if user == PLACEHOLDER_USER:
        log.warning("no Kaggle user name found: the metadata says %r; pass --user before pushing", user)
    experiment = experiment_dir.name
    dataset_slug = slugify(f"bengaliai {experiment} weights")[:50]
    kernel_slug = slugify(f"bengaliai {experiment} inference")[:50]
    dataset_id, kernel_id = f"{user}/{dataset_slug}", f"{user}/{kernel_slug}"
    commit = git_commit()

    dataset_dir = out_dir / "dataset"
    names, fold_numbers = _write_weights(checkpoints, dataset_dir)
    settings = {
        "experiment": experiment, "folds": fold_numbers, "checkpoints": names, "inference": asdict(config),
        "prior": prior.to_dict(), "routing": None if rule is None else rule.to_dict(), "block_images": block_images,
        "bengaliai": __version__, "git_commit": commit,
    }
    write_json(settings, dataset_dir / INFERENCE_JSON)
    write_json({"title": dataset_slug, "id": dataset_id, "licenses": [{"name": "CC0-1.0"}]}, dataset_dir / DATASET_METADATA)

    kernel_dir = out_dir / "kernel"
    script = kernel_script(bundle_package(), experiment=experiment, folds=fold_numbers, commit=commit, dataset=dataset_id)
    with atomic_path(kernel_dir / KERNEL_SCRIPT) as tmp:
        tmp.write_text(script, encoding="utf-8")
    metadata = {
        "id": kernel_id, "title": kernel_slug, "code_file": KERNEL_SCRIPT, "language": "python", "kernel_type": "script",
        "is_private": True, "enable_gpu": gpu, "enable_tpu": False, "enable_internet": False,
        "dataset_sources": [dataset_id], "competition_sources": [COMPETITION], "kernel_sources": [], "model_sources": [],
    }
    if shape is not None:
        metadata["machine_shape"] = shape
    write_json(metadata, kernel_dir / KERNEL_METADATA)
    log.info("kernel for %s (folds %s, prior alpha %g, routing %s) built in %s", experiment, fold_numbers, prior.alpha,
             "off" if rule is None else rule.describe(), out_dir)
    return KernelBuild(kernel_dir, dataset_dir, kernel_id, dataset_id, tuple(fold_numbers))


def resolve_machine_shape(gpu: bool, machine_shape: str | None) -> str | None:
    """The ``machine_shape`` for the kernel metadata (None: a CPU kernel, no key written)."""
    if not gpu:
        if machine_shape is not None:
            raise BengaliaiError(f"--machine-shape {machine_shape} needs --gpu (a CPU kernel has no machine shape)")
        return None
    shape = machine_shape or DEFAULT_MACHINE_SHAPE
    if shape == "NvidiaTeslaP100":
        log.warning("NvidiaTeslaP100: the torch of Kaggle's current image has no sm_60 code; the kernel may fail there")
    elif shape not in GPU_MACHINE_SHAPES:
        log.warning("machine shape %r is not one of the known GPU shapes %s; Kaggle decides whether it exists",
                    shape, ", ".join(GPU_MACHINE_SHAPES))
    return shape


def _write_weights(checkpoints: list[Path], dataset_dir: Path) -> tuple[list[str], list[int]]:
    names, folds = [], []
    for path in checkpoints:
        state = slim_state(load_checkpoint(path), path)
        name = f"fold{state['fold']}.pt"
        with atomic_path(dataset_dir / name) as tmp:
            torch.save(state, tmp)
        names.append(name)
        folds.append(int(state["fold"]))
    # Weights of folds not chosen this time must not ride along in the upload.
    for stale in dataset_dir.glob("fold*.pt"):
        if stale.name not in names:
            stale.unlink()
    return names, folds
