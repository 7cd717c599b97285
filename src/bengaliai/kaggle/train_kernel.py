"""``bengaliai kernel --train``: build a Kaggle kernel that trains folds of an experiment on Kaggle's two T4s.

The build folder holds ``kernel-metadata.json`` (competition source bengaliai-cv19, GPU T4 x2, internet
off, an earlier version's output attached when asked to resume from it, and a dataset holding ImageNet
weights when the folds start from them) and ``train.py``: the
settings resolved now (the training config with the kernel's paths, the folds to train, how to prepare
the cache and make the folds file) as readable JSON, and this package's sources with the one package
Kaggle's image lacks (iterstrat) as an embedded zip. Nothing is installed and nothing is written under
the read-only /kaggle/input: the script unpacks the zip into a scratch folder and
``train_runtime.run_training`` runs ``bengaliai prepare``, ``folds`` and ``train`` from there (torchrun
over the GPUs), leaving ``runs/<experiment>`` and ``train_folds.csv`` in /kaggle/working, the kernel's
output. ``--push`` pushes it (``push``); ``bengaliai pull`` brings its output home (``pull``).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePosixPath

from bengaliai import __version__
from bengaliai.core.competition import COMPETITION
from bengaliai.core.config import load_config, to_dict
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import atomic_path, ensure_writable, write_json
from bengaliai.data.runinfo import git_commit
from bengaliai.kaggle.bundle import TRAIN_KERNEL_PACKAGES, VENDORED, bundle_package
from bengaliai.kaggle.kernel import (
    KERNEL_METADATA,
    PLACEHOLDER_USER,
    check_kernel_ref,
    default_user,
    resolve_machine_shape,
    slugify,
)
from bengaliai.kaggle.train_runtime import kernel_config
from bengaliai.training.train import TrainConfig, parse_folds

log = logging.getLogger(__name__)

TRAIN_SCRIPT = "train.py"
KAGGLE_WORKING = Path("/kaggle/working")
# Kaggle ends a GPU session after 12 hours; stopping before keeps the output of every finished epoch.
DEFAULT_HOURS = 11.5
# A Kaggle dataset (OWNER/SLUG) and a file in it; a dataset slug is at least 3 lower-case letters, digits or hyphens.
_PRETRAINED_REF = re.compile(r"(?P<dataset>[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9][a-z0-9-]{2,})/(?P<file>[^/].*)")
_CACHE_TAG = re.compile(r"(?P<raw>raw)|(?P<mode>resize|crop)(?P<size>[1-9]\d*)")

_SCRIPT = '''\
"""Kaggle training kernel for {competition}: experiment {experiment}, folds {folds}.

Built by `bengaliai kernel --train` (bengaliai {version}, commit {commit}). Prepares the competition's
training images, makes the folds (or takes those of an earlier version's output attached to the kernel,
whose folds then resume from their last.pt) and trains on every GPU; the runs and the folds file are the
kernel's output, in /kaggle/working. The bengaliai package travels inside this file (a zip of its sources
with iterative-stratification, unpacked into a scratch folder that is removed at the end), so the kernel
needs no internet and installs nothing. Elsewhere: python train.py --root DIR (DIR holding input/ and working/).
"""

import argparse
import base64
import io
import json
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

SETTINGS = json.loads(r"""
{settings}
""")

BUNDLE = (
{bundle}
)


def main() -> None:
    parser = argparse.ArgumentParser(description="Prepare the images, make the folds and train into ROOT/working/runs.")
    parser.add_argument("--root", type=Path, default=Path("/kaggle"), help="folder with input/ (read only) and working/ (the output)")
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder for the package, the prepared cache and the folds while the kernel runs (default: ROOT/temp)")
    parser.add_argument("--hours", type=float, default=SETTINGS["hours"],
                        help="time budget: training stops then, keeping every finished epoch (default: %(default)s)")
    parser.add_argument("--nproc", type=int, default=None, help="training processes (default: one per GPU)")
    args, _ = parser.parse_known_args()
    scratch = args.scratch or args.root / "temp"
    try:
        scratch.mkdir(parents=True, exist_ok=True)
    except OSError:
        if args.scratch is not None:
            raise
        scratch = Path(tempfile.gettempdir())  # outside the output too
    with tempfile.TemporaryDirectory(prefix="bengaliai-", dir=scratch) as work:
        package_dir = Path(work) / "package"
        with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(BUNDLE)))) as archive:
            archive.extractall(package_dir)
        sys.path.insert(0, str(package_dir))
        from bengaliai.kaggle.train_runtime import configure_logging, run_training

        configure_logging()
        try:
            run_training(SETTINGS, args.root, Path(work), package_dir, hours=args.hours, nproc=args.nproc)
        except Exception:
            traceback.print_exc()  # now, while the sources it quotes still exist
            raise SystemExit(1) from None


if __name__ == "__main__":
    main()
'''


@dataclass(frozen=True)
class FoldsRecipe:
    """How the kernel makes the folds file, as ``bengaliai folds`` takes it: the same recipe makes the same file."""

    n_splits: int = 5
    seed: int = 0
    unseen_graphemes: int = 0


@dataclass(frozen=True)
class TrainKernelBuild:
    """Where the build put the kernel, what it is called on Kaggle and what it trains."""

    kernel_dir: Path
    kernel_id: str
    experiment: str
    folds: str
    resume_from: str | None

    def summary(self) -> str:
        resume = (f"resumes: {self.resume_from}'s output" if self.resume_from is not None
                  else f"resume:  build again with --resume-from {self.kernel_id} to continue from this version's output")
        return "\n".join([
            f"kernel:  {self.kernel_dir} ({self.kernel_id}: {self.experiment}, folds {self.folds})",
            f"push:    kaggle kernels push -p {self.kernel_dir}   (or bengaliai kernel --train ... --push)",
            f"then:    bengaliai pull {self.kernel_id} --out runs   (once the version has finished)",
            resume,
        ])


def build_train_kernel(
    out_dir: Path,
    config_path: Path | None = None,
    overrides: Sequence[str] = (),
    folds: str = "0",
    recipe: FoldsRecipe = FoldsRecipe(),
    user: str | None = None,
    machine_shape: str | None = None,
    resume_from: str | None = None,
    hours: float | None = None,
    pretrained: str | None = None,
) -> TrainKernelBuild:
    """Write ``out_dir/kernel-metadata.json`` and ``out_dir/train.py`` for the config and folds given.

    The config resolves here (defaults, ``config_path``, ``overrides``), so a bad setting fails now,
    not on Kaggle. ``resume_from`` (OWNER/SLUG) attaches that kernel's output, usually this kernel's
    own, to resume its folds. ``hours`` is the time budget on Kaggle (default: DEFAULT_HOURS).
    ``pretrained`` (OWNER/DATASET/FILE) attaches that Kaggle dataset and starts the folds from FILE in it
    (``model.pretrained``, found under /kaggle/input when the kernel runs).
    """
    out_dir = Path(out_dir)
    config = load_config(TrainConfig, config_path, overrides)
    prepare = _prepare_settings(config)
    _check_portable(config)
    weights = check_pretrained_ref(config, pretrained) if pretrained is not None else None
    folds = check_folds(folds, recipe.n_splits)
    if resume_from is not None:
        check_kernel_ref(resume_from)
    hours = DEFAULT_HOURS if hours is None else hours
    if hours <= 0:
        raise BengaliaiError(f"--hours {hours}: expected a positive number of hours")
    shape = resolve_machine_shape(True, machine_shape)
    ensure_writable(out_dir / TRAIN_SCRIPT)
    user = user or default_user()
    if user == PLACEHOLDER_USER:
        log.warning("no Kaggle user name found: the metadata says %r; pass --user before pushing", user)
    slug = slugify(f"bengaliai {config.experiment} train")[:50]
    kernel_id = f"{user}/{slug}"
    commit = git_commit()
    settings = {
        "folds": folds, "config": kernel_config(to_dict(config), KAGGLE_WORKING), "prepare": prepare,
        "make_folds": asdict(recipe), "hours": hours, "resume_from": resume_from, "bengaliai": __version__,
        "git_commit": commit, "pretrained": weights[1] if weights else None,
    }
    script = train_kernel_script(
        bundle_package(packages=TRAIN_KERNEL_PACKAGES, vendored=VENDORED), settings,
        experiment=config.experiment, folds=folds, commit=commit,
    )
    with atomic_path(out_dir / TRAIN_SCRIPT) as tmp:
        tmp.write_text(script, encoding="utf-8")
    metadata = {
        "id": kernel_id, "title": slug, "code_file": TRAIN_SCRIPT, "language": "python", "kernel_type": "script",
        "is_private": True, "enable_gpu": True, "enable_tpu": False, "enable_internet": False, "machine_shape": shape,
        "dataset_sources": [weights[0]] if weights else [], "competition_sources": [COMPETITION],
        "kernel_sources": [resume_from] if resume_from else [],
        "model_sources": [],
    }
    write_json(metadata, out_dir / KERNEL_METADATA)
    log.info("training kernel for %s (folds %s, %s%s) built in %s", config.experiment, folds, shape,
             f", starting from {pretrained}" if pretrained else "", out_dir)
    return TrainKernelBuild(out_dir, kernel_id, config.experiment, folds, resume_from)


def train_kernel_script(bundle: bytes, settings: dict[str, object], **facts: object) -> str:
    """The kernel's ``train.py``: ``settings`` as JSON at the top, ``bundle`` embedded as base64 lines."""
    encoded = base64.b64encode(bundle).decode("ascii")
    lines = "\n".join(f'    "{chunk}"' for chunk in textwrap.wrap(encoded, 100))
    # JSON escapes every quote inside its strings, so no three quotes in a row end the raw string early.
    text = json.dumps(settings, indent=2, ensure_ascii=False)
    return _SCRIPT.format(settings=text, bundle=lines, competition=COMPETITION, version=__version__, **facts)


def check_folds(spec: str, n_splits: int) -> str:
    """``spec`` ('all' or fold numbers such as 0 or 0,2) if the kernel's ``n_splits`` folds hold them."""
    if spec == "all":
        return spec
    return ",".join(map(str, parse_folds(spec, n_splits, holder=f"the kernel (--n-splits {n_splits}) makes")))


def check_pretrained_ref(config: TrainConfig, ref: str) -> tuple[str, str]:
    """(OWNER/DATASET, FILE) of ``--pretrained OWNER/DATASET/FILE``, once ``config``'s model can take weights."""
    match = _PRETRAINED_REF.fullmatch(ref)
    if match is None or ".." in PurePosixPath(match["file"]).parts:
        raise BengaliaiError(
            f"--pretrained {ref!r}: expected OWNER/DATASET/FILE, a Kaggle dataset (kaggle.com/datasets/OWNER/DATASET) "
            "and the weights file in it, e.g. someone/timm-resnets/seresnext26d_32x4d.pth"
        )
    replace(config.model, pretrained=match["file"])  # ModelConfig refuses a model that takes none
    return match["dataset"], match["file"]


def _prepare_settings(config: TrainConfig) -> dict[str, object]:
    """The ``bengaliai prepare`` options that make the cache ``data.cache`` names (raw, crop128, resize96...)."""
    match = _CACHE_TAG.fullmatch(config.data.cache)
    if match is None:
        raise BengaliaiError(f"data.cache {config.data.cache!r}: the kernel prepares raw, crop<SIZE> or resize<SIZE> caches")
    if match["raw"]:
        return {"mode": "raw", "size": 128}  # prepare takes a size; raw ignores it
    return {"mode": match["mode"], "size": int(match["size"])}


def _check_portable(config: TrainConfig) -> None:
    """Refuse settings that name files on this machine: the kernel sees only the competition and its outputs."""
    if config.data.extra:
        raise BengaliaiError(
            f"data.extra {list(config.data.extra)}: the training kernel trains on the competition's images alone "
            "(extra sources are not attached to it); drop data.extra"
        )
    if config.model.pretrained is not None:
        raise BengaliaiError(
            f"model.pretrained {config.model.pretrained}: a file on this machine, which the kernel cannot read; "
            "attach the weights as a Kaggle dataset with --pretrained OWNER/DATASET/FILE, or train from scratch there "
            "(model.pretrained=null)"
        )
