"""The prepare stage: each image parquet file becomes a uint8 .npy cache plus its id index.

For every ``{split}_image_data_{i}.parquet`` in DIR it writes ``DIR/cache/<tag>/<stem>.npy``
((N, H, W) uint8, ink high, memory-mappable) and ``<stem>.csv`` (``image_id`` in array order),
with ``preprocess_batch`` - the function inference uses too. ``meta.json`` in the tag folder
records the config and each source file's size and mtime, so an unchanged file whose outputs
exist is skipped, and training refuses a cache whose files changed since (``check_cache_current``).
Files go one at a time and each is streamed in row blocks, so memory stays near one block
(``max_block_bytes``) whatever the file size; outputs appear under their final names only when
complete.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from bengaliai.core.competition import N_IMAGE_FILES, N_PIXELS, TRAIN_CSV, image_parquet_name
from bengaliai.core.errors import DataError
from bengaliai.core.fileio import atomic_path, write_json
from bengaliai.data.labels import check_image_ids, read_train_labels
from bengaliai.data.parquet_images import iter_image_blocks, open_image_file, read_image_ids
from bengaliai.data.preprocess import PreprocessConfig, preprocess_batch

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "test")
CACHE_DIR = "cache"
META_JSON = "meta.json"
# Decoded rows held at once. A full competition file (1.6 GB of pixels) then goes in 2 blocks:
# peak RSS about 1.3 GB against 6.6 GB for pandas; smaller blocks spill more to disk (slower).
DEFAULT_MAX_BLOCK_BYTES = 2**30
# Images per preprocessing task: large enough to amortise the thread hand-off.
_BATCH = 1024

T = TypeVar("T")
R = TypeVar("R")


def cache_dir(input_dir: Path, tag: str, cache_root: Path | None = None) -> Path:
    """Where prepare writes the cache of a ``PreprocessConfig.tag``: ``DIR/cache/<tag>``, or
    ``<cache_root>/<tag>`` when the caches live apart from a read-only input (Kaggle)."""
    return (Path(cache_root) if cache_root is not None else Path(input_dir) / CACHE_DIR) / tag


def cache_settings(input_dir: Path, tag: str, cache_root: Path | None = None) -> dict[str, Any]:
    """The ``PreprocessConfig`` (as a dict) that made the cache ``tag``; inference must use the same."""
    meta_path = cache_dir(input_dir, tag, cache_root) / META_JSON
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))["config"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        raise DataError(meta_path, f"missing or unreadable; run `bengaliai prepare --input {input_dir}` again") from None


def prepare_command(input_dir: Path, settings: dict[str, Any], split: str, cache_root: Path | None = None) -> str:
    """The ``bengaliai prepare`` command line that makes (or brings up to date) a cache of ``settings``."""
    where = f" --cache-dir {cache_root}" if cache_root is not None else ""
    return (f"bengaliai prepare --input {input_dir} --splits {split} --mode {settings.get('mode')} "
            f"--size {settings.get('size')}{where}")


def source_stamp(path: Path) -> dict[str, int]:
    """What ``meta.json`` records of a source file (size and mtime): prepare skips a file whose stamp is
    unchanged, and training refuses a cache whose sources' stamps changed since."""
    stat = Path(path).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def check_cache_current(input_dir: Path, tag: str, split: str, cache_root: Path | None = None) -> None:
    """Refuse the cache ``tag`` of ``split`` unless it was prepared from the parquet files now in DIR.

    Each file must be the one prepare recorded in ``meta.json`` (same size and mtime: the rule by which
    prepare skips a file), and each parquet file of the split must have its cache file. A cache that
    records nothing for one of its files is refused too: prepare would not trust it either. A parquet
    file that is gone cannot be checked: its cached images are used, with a warning.
    """
    input_dir = Path(input_dir)
    folder = cache_dir(input_dir, tag, cache_root)
    settings = cache_settings(input_dir, tag, cache_root)
    records = json.loads((folder / META_JSON).read_text(encoding="utf-8")).get("files")
    records = records if isinstance(records, dict) else {}
    fix = f"run `{prepare_command(input_dir, settings, split, cache_root)}`"
    parquets = {path.name for path in input_dir.glob(f"{split}_image_data_*.parquet")}
    cached = {f"{npy.stem}.parquet" for npy in folder.glob(f"{split}_image_data_*.npy")}
    for name in sorted(parquets | cached):
        parquet = input_dir / name
        if name not in cached:
            raise DataError(parquet, f"not in the {tag} cache {folder}: its images would be left out; {fix}")
        if name not in parquets:
            log.warning("%s is gone: its cached images in %s are used as prepared, unchecked", parquet, folder)
            continue
        record = records.get(name)
        now = source_stamp(parquet)
        if not isinstance(record, dict) or not now.keys() <= record.keys():
            raise DataError(parquet, f"the {tag} cache {folder} does not record what it was prepared from (an "
                                     f"interrupted prepare, or made elsewhere); {fix}")
        if {k: record[k] for k in now} != now:
            then_time, now_time = _times(record["mtime_ns"], now["mtime_ns"])
            raise DataError(
                parquet,
                f"changed since the {tag} cache {folder} was prepared from it (then {record['size']} bytes, modified "
                f"{then_time}; now {now['size']} bytes, modified {now_time}): its cached images are stale; {fix}",
            )


def _times(*mtimes_ns: int) -> list[str]:
    """Local times of ``mtimes_ns`` to the second, or finer where that alone would not tell them apart."""
    def show(ns: int, spec: str) -> str:
        return datetime.fromtimestamp(ns / 1e9).isoformat(sep=" ", timespec=spec)

    coarse = [show(ns, "seconds") for ns in mtimes_ns]
    return coarse if len(set(coarse)) == len(set(mtimes_ns)) else [show(ns, "microseconds") for ns in mtimes_ns]


def find_image_files(input_dir: Path, splits: Sequence[str] = SPLITS) -> list[Path]:
    """The image parquet files of ``splits`` in DIR, in split then index order."""
    input_dir = Path(input_dir)
    files: list[Path] = []
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        pattern = re.compile(rf"{split}_image_data_(\d+)\.parquet")
        candidates = input_dir.glob(f"{split}_image_data_*.parquet")
        found = [(int(m.group(1)), p) for p in candidates if (m := pattern.fullmatch(p.name))]
        if not found:
            expected = f"{image_parquet_name(split, 0)} .. {image_parquet_name(split, N_IMAGE_FILES - 1)}"
            raise DataError(input_dir, f"no {split} image files; expected {expected}")
        files += [path for _, path in sorted(found)]
    return files


def prepare(
    input_dir: Path,
    config: PreprocessConfig,
    workers: int = 1,
    splits: Sequence[str] = SPLITS,
    max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES,
    cache_root: Path | None = None,
) -> list[Path]:
    """Write the cache of ``config`` for the image files of ``splits``; return the .npy paths.

    ``workers`` threads decode and preprocess within a file (OpenCV and Arrow release the GIL);
    files are processed one after another to keep memory bounded. ``cache_root`` puts the cache
    there instead of ``input_dir/cache`` (nothing is then written under ``input_dir``).
    """
    input_dir = Path(input_dir)
    files = find_image_files(input_dir, splits)
    if "train" in splits:
        _check_train_labels(input_dir, [f for f in files if f.name.startswith("train_")])
    out_dir = cache_dir(input_dir, config.tag, cache_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / META_JSON
    meta = _load_meta(meta_path, config)
    written: list[Path] = []
    for path in tqdm(files, desc=f"prepare {config.tag}", unit="file", disable=None):
        npy, csv = out_dir / f"{path.stem}.npy", out_dir / f"{path.stem}.csv"
        source = source_stamp(path)
        recorded = meta["files"].get(path.name, {})
        if {k: recorded.get(k) for k in source} == source and npy.exists() and csv.exists():
            log.info("%s: up to date, skipped", path.name)
            written.append(npy)
            continue
        # Forget the old outputs first: a failure below must not leave them looking current.
        meta["files"].pop(path.name, None)
        write_json(meta, meta_path)
        for stale in (npy, csv):
            stale.unlink(missing_ok=True)
        started = time.perf_counter()
        n_images = _prepare_file(path, npy, csv, config, workers, max_block_bytes)
        seconds = time.perf_counter() - started
        log.info(
            "%s: %d images -> %s in %.1f s (%.0f images/s)", path.name, n_images, npy, seconds, n_images / seconds
        )
        meta["files"][path.name] = {**source, "images": n_images}
        write_json(meta, meta_path)
        written.append(npy)
    return written


def _check_train_labels(input_dir: Path, train_files: Sequence[Path]) -> None:
    """Validate train.csv and that each of its ids has an image, before any work is done."""
    labels_path = input_dir / TRAIN_CSV
    if not labels_path.exists():
        log.warning("%s is missing: the training images cannot be checked against their labels", labels_path)
        return
    labels = read_train_labels(labels_path)
    image_ids = [image_id for path in train_files for image_id in read_image_ids(path)]
    check_image_ids(labels["image_id"], image_ids, labels_path, f"the train image files in {input_dir}")


def _load_meta(meta_path: Path, config: PreprocessConfig) -> dict[str, Any]:
    """The recorded state of the cache, or a fresh one when missing, unreadable or for another config."""
    fresh: dict[str, Any] = {"config": config.to_dict(), "files": {}}
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if isinstance(meta, dict) and meta.get("config") == fresh["config"] and isinstance(meta.get("files"), dict):
            return meta
    return fresh


def _prepare_file(
    path: Path, npy: Path, csv: Path, config: PreprocessConfig, workers: int, max_block_bytes: int
) -> int:
    """Stream one parquet file through ``preprocess_batch`` into ``npy`` and its ids into ``csv``."""
    parquet = open_image_file(path)
    ids = read_image_ids(path, parquet)
    n_blocks = math.ceil(len(ids) * N_PIXELS / max(max_block_bytes, N_PIXELS))
    rows_per_block = math.ceil(len(ids) / n_blocks)
    shape = (len(ids), *config.image_shape)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    with (
        atomic_path(npy) as tmp_npy,
        atomic_path(csv) as tmp_csv,
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=len(ids), desc=path.name, unit="img", leave=False, disable=None) as bar,
    ):
        # Plain sequential writes: a memmap's dirty pages would count towards resident memory.
        with open(tmp_npy, "wb") as out:
            np.lib.format.write_array_header_1_0(out, header)
            data_start = out.tell()
            blocks = iter_image_blocks(
                path, rows_per_block, parquet=parquet, use_threads=workers > 1, spill_dir=npy.parent
            )
            for _, images in blocks:
                batches = (images[i : i + _BATCH] for i in range(0, len(images), _BATCH))
                for result in _ordered_map(pool, lambda batch: preprocess_batch(batch, config), batches, 2 * workers):
                    out.write(result.data)
                    bar.update(len(result))
            complete = out.tell() - data_start == len(ids) * math.prod(config.image_shape)
        if not complete:
            raise DataError(path, "fewer images decoded than the file declares")
        pd.DataFrame({"image_id": ids}).to_csv(tmp_csv, index=False, encoding="utf-8", lineterminator="\n")
    return len(ids)


def _ordered_map(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], depth: int) -> Iterator[R]:
    """Like ``pool.map`` but with at most ``depth`` tasks in flight, so results do not pile up."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
