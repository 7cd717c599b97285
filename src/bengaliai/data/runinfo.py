"""Run folders that describe themselves: resolved config, git commit, environment, input fingerprints; and reading
them back, refusing folds whose train.csv or folds file has changed since they were trained, and naming the
settings on which the folds of one experiment differ."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import platform
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from bengaliai import __version__
from bengaliai.core.competition import TRAIN_CSV
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import atomic_path, write_json
from bengaliai.data.folds import FOLDS_CSV

log = logging.getLogger(__name__)

CONFIG_YAML = "config.yaml"
RUN_JSON = "run.json"
# Written after every epoch: what the leaderboard needs without opening a checkpoint.
SUMMARY_JSON = "summary.json"
_FOLD_DIR = re.compile(r"fold(\d+)")
# run.json key of the fingerprints of train.csv and the folds file a fold was trained with.
INPUTS = "inputs"
# Which file each fingerprint is of, in the words of the messages.
INPUT_FILES = {"train_csv": "train.csv", "folds": "folds file"}
_FINGERPRINT_CHARS = 16
_BLOCK_BYTES = 1 << 20
# The settings of a fold's config.yaml (a section or one dotted key) that decide what its model is and
# what it reads: folds of one experiment that differ in any are not one setting's cross-validation.
# The recipe (epochs, optimiser, augmentation, loss) and where and how fast it ran are not compared.
MODEL_SETTINGS: tuple[str, ...] = (
    "model", "preprocess", "data.cache", "data.mean", "data.std", "data.extra", "data.extra_share", "data.extra_heads",
)
# Paths that differ between machines for the same thing: the ImageNet file; extra sources go by folder name.
_NOT_COMPARED = frozenset({"model.pretrained"})
_ABSENT = object()  # a setting a fold's config does not record


def git_commit(repo: Path | None = None) -> str:
    """The commit of the working tree (suffixed ``-dirty`` when it has changes), or ``unknown``."""
    cwd = repo or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def environment() -> dict[str, Any]:
    """What produced a run: versions, machine, time."""
    return {
        "bengaliai": __version__,
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "machine": platform.platform(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
    }


def write_run_description(run_dir: Path, config: dict[str, Any]) -> None:
    """Save ``config.yaml`` (the resolved configuration) and ``run.json`` (environment and the
    fingerprints of the run's train.csv and folds file, see check_run_inputs) in the run folder."""
    write_config(run_dir, config)
    write_json(environment() | {INPUTS: input_fingerprints(config)}, run_dir / RUN_JSON)


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Save ``config.yaml`` alone: a resume with changed settings records what the run now trains with."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / CONFIG_YAML) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")


def is_fold_dir_name(name: str) -> bool:
    """Whether a folder name is a fold's run folder, ``fold<K>``."""
    return _FOLD_DIR.fullmatch(name) is not None


def fold_dirs(experiment_dir: Path) -> dict[int, Path]:
    """The ``fold<K>`` folders of an experiment, by fold number (ascending)."""
    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        return {}
    found = {}
    for path in experiment_dir.iterdir():
        match = _FOLD_DIR.fullmatch(path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def fold_files(experiment_dir: Path, name: str) -> dict[int, Path]:
    """The file ``name`` (``best.pt``, ``oof.npz``, ...) of every ``fold<K>`` folder that has it, by fold."""
    return {k: d / name for k, d in fold_dirs(experiment_dir).items() if (d / name).is_file()}


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved training config saved in a fold's ``config.yaml``, as a plain dict."""
    path = Path(run_dir) / CONFIG_YAML
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "file not found; `bengaliai train` writes it when a fold starts") from None
    except yaml.YAMLError as error:
        raise DataError(path, f"not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise DataError(path, "expected a mapping of settings")
    return config


def run_input(config: dict[str, Any], input_dir: Path | None = None) -> tuple[Path, Path]:
    """train.csv and the folds file of a run: its ``data.input`` unless ``input_dir`` overrides it."""
    base = Path(input_dir) if input_dir is not None else Path(str(config.get("data", {}).get("input", "input")))
    return base / TRAIN_CSV, base / str(config.get("folds_file", FOLDS_CSV))


def file_fingerprint(path: Path) -> str:
    """The first 16 hex digits of the SHA-256 of a file's bytes, read in blocks.

    Enough to tell two versions of train.csv or train_folds.csv apart, short enough to read in a message.
    """
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as stream:
            for block in iter(lambda: stream.read(_BLOCK_BYTES), b""):
                digest.update(block)
    except OSError as error:
        raise DataError(path, f"cannot read it ({error.strerror or error})") from None
    return digest.hexdigest()[:_FINGERPRINT_CHARS]


def input_fingerprints(config: dict[str, Any], input_dir: Path | None = None) -> dict[str, dict[str, str | None]]:
    """``{"train_csv": {"path", "sha256"}, "folds": {...}}`` of a run config's input files (run_input).

    ``sha256`` is None for a file that does not exist.
    """
    paths = dict(zip(INPUT_FILES, run_input(config, input_dir), strict=True))
    return {
        key: {"path": str(path), "sha256": file_fingerprint(path) if path.is_file() else None}
        for key, path in paths.items()
    }


def recorded_inputs(run_dir: Path) -> dict[str, str | None] | None:
    """The fingerprints a fold folder's run.json recorded, by INPUT_FILES key; None for runs that predate them."""
    path = Path(run_dir) / RUN_JSON
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise DataError(path, f"not readable JSON ({error})") from None
    inputs = run.get(INPUTS) if isinstance(run, dict) else None
    if not isinstance(inputs, dict):
        return None
    return {key: (inputs.get(key) or {}).get("sha256") for key in INPUT_FILES}


def check_run_inputs(run_dir: Path, config: dict[str, Any] | None = None, input_dir: Path | None = None) -> None:
    """Refuse a fold folder whose train.csv or folds file has changed since it was trained.

    A model trained on other folds has seen images that the current folds call out of fold, so its
    out-of-fold scores and any alpha tuned on them would be wrong without any error. Compares the
    fingerprints in ``run_dir/run.json`` with the files of ``config`` (default: the fold's
    config.yaml), in ``input_dir`` if given. Runs that recorded no fingerprints, and files that are
    not there to compare, only log a warning.
    """
    run_dir = Path(run_dir)
    recorded = recorded_inputs(run_dir)
    if recorded is None:
        log.warning("%s: run.json records no input fingerprints (an older run): cannot check that train.csv and "
                    "the folds file are the ones it was trained with", run_dir)
        return
    config = config if config is not None else read_run_config(run_dir)
    for (key, what), path in zip(INPUT_FILES.items(), run_input(config, input_dir), strict=True):
        then = recorded.get(key)
        if then is None:
            continue
        if not path.is_file():
            log.warning("%s: cannot check the %s it was trained with: %s does not exist", run_dir, what, path)
            continue
        now = file_fingerprint(path)
        if now != then:
            raise BengaliaiError(
                f"{path} changed since {run_dir} was trained (recorded {then}, now {now}): retrain "
                f"{run_dir.name}, or restore the {what} the run used"
            )


def check_ensemble_inputs(run_dirs: Sequence[Path], input_dir: Path | None = None) -> None:
    """Refuse fold folders used together (an ensemble, an out-of-fold evaluation) that do not share inputs.

    Each must match the current train.csv and folds file (check_run_inputs, in ``input_dir`` if
    given), and their recorded fingerprints must agree with each other: folds trained on different
    splits share no cross-validation, the out-of-fold images of one are training images of another.
    Folds that recorded no fingerprints are not compared.
    """
    run_dirs = [Path(d) for d in run_dirs]
    for run_dir in run_dirs:
        check_run_inputs(run_dir, input_dir=input_dir)
    recorded = {d: recorded_inputs(d) for d in run_dirs}
    for key, what in INPUT_FILES.items():
        seen = [(d, r[key]) for d, r in recorded.items() if r is not None and r.get(key) is not None]
        differing = [(d, sha) for d, sha in seen if sha != seen[0][1]]
        if differing:
            (first, a), (other, b) = seen[0], differing[0]
            raise BengaliaiError(
                f"{first.name} and {other.name} of {first.parent} were trained on different {what}s "
                f"({first.name} {a}, {other.name} {b}): retrain the folds on one {what} before combining them"
            )


def fold_settings(config: Mapping[str, Any], keys: Sequence[str] = MODEL_SETTINGS) -> dict[str, Any]:
    """The settings under ``keys`` of a fold's config, by dotted name (``model.arch``); unrecorded ones left out."""
    found: dict[str, Any] = {}
    for key in keys:
        node: Any = config
        for part in key.split("."):
            node = node.get(part, _ABSENT) if isinstance(node, Mapping) else _ABSENT
        if node is not _ABSENT:
            found |= _flat(key, node)
    if isinstance(found.get("data.extra"), list):
        found["data.extra"] = [Path(str(path)).name for path in found["data.extra"]]
    return {key: value for key, value in found.items() if key not in _NOT_COMPARED}


def differing_settings(
    configs: Mapping[int, Mapping[str, Any]], keys: Sequence[str] = MODEL_SETTINGS
) -> dict[str, dict[int, Any]]:
    """The settings (fold_settings) on which the configs of folds disagree, each with every fold's value.

    A fold that does not record a setting (a run older than it) is not compared on it.
    """
    settings = {fold: fold_settings(config, keys) for fold, config in configs.items()}
    differing = {}
    for name in dict.fromkeys(name for recorded in settings.values() for name in recorded):
        values = {fold: recorded[name] for fold, recorded in settings.items() if name in recorded}
        if len({_shown(value) for value in values.values()}) > 1:
            differing[name] = values
    return differing


def describe_differences(differing: Mapping[str, Mapping[int, Any]], limit: int = 4) -> str:
    """``model.arch (fold0, fold1: resnet34; fold2: resnet18), ...`` of differing_settings, the first ``limit``."""
    parts = []
    for name, values in list(differing.items())[:limit]:
        folds_of: dict[str, list[str]] = {}
        for fold, value in values.items():
            folds_of.setdefault(_shown(value), []).append(f"fold{fold}")
        by_value = "; ".join(", ".join(folds) + f": {value}" for value, folds in folds_of.items())
        parts.append(f"{name} ({by_value})")
    more = len(differing) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _flat(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {name: item for part, inner in value.items() for name, item in _flat(f"{key}.{part}", inner).items()}
    return {key: value}


def _shown(value: Any) -> str:
    """A setting as YAML writes it in a flow: ``true``, ``null``, ``[hw, lf]``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)
