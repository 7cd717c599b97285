"""A class-per-folder handwriting dataset -> competition training files, in bounded memory.

The engine under ``bengaliai import SOURCE``: a ``FolderDataset`` says where a dataset keeps its
class folders, which file suffixes are images, which grapheme each folder holds (the label map lives
in ``competition``), the id prefix and how to read a file name; ``import_folders`` does the rest.

Each image is cleaned of specks and cropped to its ink (``read_character``, either polarity), then
drawn into the 137x236 frame by ``placement.place_character`` with its own generator seeded by
(seed, folder, index), so any worker count gives the same bytes. Worker processes place chunks of
images; this process writes one parquet file at a time, so memory stays near one file's pixels
(1.6 GB at 50,000 rows). OUT gets train.csv, train_image_data_{i}.parquet, sources.csv (each
image's file and the fields of its name) and import.json (counts per class, settings, seed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from bengaliai.core.competition import (
    HEIGHT,
    N_PIXELS,
    TRAIN_COLUMNS,
    TRAIN_CSV,
    WIDTH,
    compose,
    image_parquet_name,
    seen_graphemes,
)
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.handwriting.placement import PlacementConfig, place_character

log = logging.getLogger(__name__)

IMPORT_JSON = "import.json"
SOURCES_CSV = "sources.csv"
MAX_ROWS_PER_FILE = 50_000
_CHUNK = 64  # images per task: small enough to balance, large enough to amortise the pickling


def _no_fields(name: str) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class FolderDataset:
    """What ``import_folders`` needs to know about one dataset's layout and labels."""

    name: str  # recorded in import.json
    command: str  # the import subcommand, for the progress bar
    folders: frozenset[int]  # the dataset's class folders (numbered), labelled or not
    labels: Mapping[int, tuple[int, int, int]]  # folder -> (root, vowel, consonant) of the folders to import
    id_prefix: str  # ids are <prefix>_<folder>_<index>
    suffixes: tuple[str, ...]  # image file suffixes, lower case
    images_dir: str = ""  # the class folders' parent inside --src ("" : --src itself)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    name_fields: Callable[[str], dict[str, str]] = _no_fields  # extra sources.csv columns from a file name
    field_names: tuple[str, ...] = ()  # the keys name_fields returns, in column order

    @property
    def source_columns(self) -> tuple[str, ...]:
        return ("image_id", "path", *self.field_names)

    def bare_roots(self) -> FolderDataset:
        """The same dataset with only its folders of bare roots (root, 0, 0), for ``synth --roots-from``."""
        labels = {f: t for f, t in self.labels.items() if t[1:] == (0, 0)}
        return dataclasses.replace(self, labels=labels, name=f"{self.name}, bare roots only")


@dataclass(frozen=True)
class SourceImage:
    folder: int
    index: int  # place in the folder's sorted file list
    path: Path
    prefix: str

    @property
    def image_id(self) -> str:
        return f"{self.prefix}_{self.folder}_{self.index}"


def image_rng(seed: int, folder: int, index: int) -> np.random.Generator:
    """The generator that places one image: independent of worker count, order and --limit-per-class."""
    return np.random.default_rng([seed % 2**64, folder, index])


def read_character(path: Path, config: PlacementConfig = PlacementConfig()) -> np.ndarray:
    """The ink of one dataset image as a bool mask cropped to its box: the image enlarged
    ``config.upsample`` times (bicubic), dark ink at most ``config.ink_threshold`` (light ink at least
    255 minus it), specks under ``config.speck_fraction`` of the ink dropped. DataError naming the file
    if unusable."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(path, f"cannot read the file ({error.strerror or error})") from None
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise DataError(path, "not a readable image (corrupt, or not a PNG or JPEG)")
    if config.upsample > 1:
        image = cv2.resize(image, None, fx=config.upsample, fy=config.upsample, interpolation=cv2.INTER_CUBIC)
    light = image > 127
    border = np.concatenate([light[0], light[-1], light[:, 0], light[:, -1]])
    # Dark ink on light paper when the border is mostly light; either way the ink lies at least
    # 255 - ink_threshold grey levels from white paper (black paper).
    threshold = config.ink_threshold
    ink = image <= threshold if border.mean() > 0.5 else image >= 255 - threshold
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.view(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if not areas.size:
        raise DataError(path, "no ink in the image")
    kept = np.flatnonzero(areas >= config.speck_fraction * areas.sum()) + 1
    if len(kept) < n - 1:
        ink = np.isin(labels, kept)
    ys, xs = np.nonzero(ink)
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _folder_list(folders: Sequence[int]) -> str:
    """1, 2, 3 .. as ranges: '1-42, 47-168'."""
    parts, run = [], [folders[0]]
    for f in folders[1:]:
        if f == run[-1] + 1:
            run.append(f)
            continue
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [f]
    parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(parts)


def scan_folders(src: Path, dataset: FolderDataset, limit_per_class: int | None = None) -> list[SourceImage]:
    """The images of the labelled class folders under SRC, by folder number then file name.

    Missing class folders and unknown entries are logged as warnings; no labelled class at all is an
    error. ``limit_per_class`` keeps that many images per folder, evenly spaced in name order.
    """
    images_dir = Path(src) / dataset.images_dir
    if not images_dir.is_dir():
        layout = f"{dataset.images_dir}/1 .. {dataset.images_dir}/{max(dataset.folders)}"
        what = f"no {dataset.images_dir}/ folder" if dataset.images_dir else "not a folder"
        raise DataError(src, f"{what}; expected the {dataset.name} folder holding {layout.lstrip('/')}")
    known = {str(n) for n in dataset.folders}
    entries = {p.name: p for p in images_dir.iterdir() if p.is_dir()}
    unknown = sorted(set(entries) - known)
    missing = sorted(known - set(entries), key=int)
    if unknown:
        log.warning("%s: ignored %d unknown folder(s): %s", images_dir, len(unknown), ", ".join(unknown))
    if missing:
        log.warning(
            "%s: %d of the %d class folders are missing: %s", images_dir, len(missing), len(known), ", ".join(missing)
        )
    present = sorted(int(name) for name in entries if name in known and int(name) in dataset.labels)
    if not present:
        raise DataError(images_dir, f"no folder of a labelled grapheme class ({_folder_list(sorted(dataset.labels))})")
    images: list[SourceImage] = []
    for folder in present:
        folder_path = entries[str(folder)]
        # scandir knows each entry's type without a stat; sorting names, not Paths, is 10x faster.
        with os.scandir(folder_path) as scan:
            names = sorted(e.name for e in scan if e.name.lower().endswith(dataset.suffixes) and e.is_file())
        keep = range(len(names))
        if limit_per_class is not None and limit_per_class < len(names):
            keep = [i * len(names) // limit_per_class for i in range(limit_per_class)]
        if not names:
            log.warning("%s: no %s files", folder_path, " or ".join(dataset.suffixes))
        images += [SourceImage(folder, i, folder_path / names[i], dataset.id_prefix) for i in keep]
    if not images:
        raise DataError(images_dir, f"no {' or '.join(dataset.suffixes)} images in the labelled class folders")
    return images


def grapheme_text(labels: tuple[int, int, int]) -> str:
    """The grapheme string of a label triple, spelled as the competition's training set spells it."""
    seen = {g.labels: g.text for g in seen_graphemes()}
    return seen.get(labels, compose(*labels))


_worker_config: PlacementConfig | None = None


def _init_worker(config: PlacementConfig) -> None:
    global _worker_config
    cv2.setNumThreads(1)  # the processes are the parallelism
    _worker_config = config


def _place_chunk(
    task: Sequence[tuple[int, int, str]], seed: int, config: PlacementConfig | None = None
) -> np.ndarray | tuple[str, str]:
    """The placed images of one chunk, or (path, problem) of the first unusable file."""
    config = config or _worker_config
    assert config is not None, "worker not initialised"
    images = np.empty((len(task), HEIGHT, WIDTH), dtype=np.uint8)
    for row, (folder, index, path) in enumerate(task):
        try:
            ink = read_character(Path(path), config)
        except DataError as error:  # returned, not raised: the pool cannot pickle a DataError
            return (str(error.path), error.problem)
        images[row] = place_character(ink, image_rng(seed, folder, index), config)
    return images


def file_sizes(n: int, max_rows: int = MAX_ROWS_PER_FILE) -> list[int]:
    """Rows per parquet file: as few near-equal files as keep each at most ``max_rows``."""
    files = max(1, math.ceil(n / max_rows))
    return [len(part) for part in np.array_split(np.arange(n), files)]


def _chunks(images: Sequence[SourceImage], sizes: Sequence[int]) -> Iterator[list[tuple[int, int, str]]]:
    start = 0
    for size in sizes:  # chunks never straddle two files
        for first in range(start, start + size, _CHUNK):
            yield [(s.folder, s.index, str(s.path)) for s in images[first : min(first + _CHUNK, start + size)]]
        start += size


def _placed(
    tasks: Iterator[list[tuple[int, int, str]]], seed: int, workers: int, config: PlacementConfig
) -> Iterator[np.ndarray]:
    """Placed chunks in task order; at most 4 chunks per worker wait, so memory stays bounded."""
    if workers == 1:
        for task in tasks:
            yield _checked(_place_chunk(task, seed, config))
        return
    # spawn, not fork: a forked child can inherit locks held by cv2 or pyarrow threads and hang.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (config,)) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.apply_async(_place_chunk, (task, seed)))
            if len(pending) >= 4 * workers:
                yield _checked(pending.popleft().get())
        while pending:
            yield _checked(pending.popleft().get())


def _checked(result: np.ndarray | tuple[str, str]) -> np.ndarray:
    if isinstance(result, tuple):
        raise DataError(*result)
    return result


def import_folders(
    dataset: FolderDataset,
    src: Path,
    out: Path,
    seed: int = 0,
    workers: int = 1,
    limit_per_class: int | None = None,
    config: PlacementConfig | None = None,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
) -> dict[str, Any]:
    """Write the labelled class folders of ``dataset`` at SRC into OUT in competition training format.

    ``config`` defaults to the dataset's placement. Returns the manifest also written to OUT/import.json.
    """
    config = config or dataset.placement
    src, out = Path(src), Path(out)
    images = scan_folders(src, dataset, limit_per_class)
    sizes = file_sizes(len(images), max_rows_per_file)
    stale = sorted(out.glob("train_image_data_*.parquet"))
    if stale and not (out / IMPORT_JSON).exists():
        raise BengaliaiError(f"{out} holds image files that no import wrote ({stale[0].name}, ...); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for path in stale:  # a previous import, which may have had more files
        path.unlink()
    counts = dict(sorted(Counter(s.folder for s in images).items()))
    texts = {f: grapheme_text(dataset.labels[f]) for f in counts}
    manifest = {
        "dataset": dataset.name, "source": str(src.resolve()),
        "seed": seed, "limit_per_class": limit_per_class, "images": len(images),
        "files": [{"name": image_parquet_name("train", i), "images": n} for i, n in enumerate(sizes)],
        "classes": [
            {"folder": f, "grapheme_root": r, "vowel_diacritic": v, "consonant_diacritic": c, "character": texts[f],
             "images": n}
            for f, n in counts.items()
            for r, v, c in [dataset.labels[f]]
        ],
        "sources": SOURCES_CSV, "settings": asdict(config), "complete": False,
    }
    write_json(manifest, out / IMPORT_JSON)
    rows = [(s.image_id, *dataset.labels[s.folder], texts[s.folder]) for s in images]
    write_csv(pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)), out / TRAIN_CSV)
    sources = [
        {"image_id": s.image_id, "path": s.path.relative_to(src).as_posix(), **dataset.name_fields(s.path.name)}
        for s in images
    ]
    write_csv(pd.DataFrame(sources, columns=list(dataset.source_columns)), out / SOURCES_CSV)
    log.info(
        "importing %d images of %d classes from %s into %s with %d worker(s)", len(images), len(counts), src, out, workers
    )
    _write_images(images, sizes, out, seed, workers, config, dataset.command)
    manifest["complete"] = True
    write_json(manifest, out / IMPORT_JSON)
    log.info("done: %d images in %d file(s) in %s", len(images), len(sizes), out)
    return manifest


def _write_images(
    images: Sequence[SourceImage], sizes: Sequence[int], out: Path, seed: int, workers: int, config: PlacementConfig,
    command: str,
) -> None:
    chunks = _placed(_chunks(images, sizes), seed, workers, config)
    start = 0
    with (
        contextlib.closing(chunks),  # stops the workers at once if anything below fails
        tqdm(total=len(images), unit="img", desc=command, disable=None) as progress,
    ):
        for file_index, size in enumerate(sizes):
            # Pixel-major, so write_image_parquet's transpose to one column per pixel is a view.
            pixels = np.empty((N_PIXELS, size), dtype=np.uint8)
            filled = 0
            while filled < size:
                chunk = next(chunks)
                _transpose_into(chunk.reshape(len(chunk), N_PIXELS), pixels[:, filled : filled + len(chunk)])
                filled += len(chunk)
                progress.update(len(chunk))
            ids = [s.image_id for s in images[start : start + size]]
            path = out / image_parquet_name("train", file_index)
            write_image_parquet(path, ids, pixels.T.reshape(size, HEIGHT, WIDTH))
            log.info("wrote %s (%d images)", path.name, size)
            del pixels
            start += size


def _transpose_into(rows: np.ndarray, out: np.ndarray) -> None:
    # cv2.transpose is a cache-blocked transpose, much faster than numpy's strided copy.
    result = cv2.transpose(rows, dst=out)
    if not np.shares_memory(result, out):
        out[...] = result
