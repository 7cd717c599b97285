"""A class-per-folder handwriting dataset on disk: its layout, its images listed, one image read to its ink.

A ``FolderDataset`` says where a dataset keeps its class folders, which file suffixes are images,
which grapheme each folder holds (the label map lives in ``competition``), the id prefix and how to
read a file name. ``scan_folders`` lists the images of its labelled folders in a fixed order (the
ids follow it) and ``read_character`` turns one file into a bool mask of its ink: the input side of
``folder_import``, which places the images and writes the competition's files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bengaliai.core.errors import DataError
from bengaliai.handwriting.placement import PlacementConfig

log = logging.getLogger(__name__)


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
    return character_ink(image, config, path)


def character_ink(image: np.ndarray, config: PlacementConfig = PlacementConfig(), where: Path | str = "") -> np.ndarray:
    """The ink of a grey image as ``read_character`` finds it (a scan's cell as much as a file);
    DataError naming ``where`` when there is none."""
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
        raise DataError(where, "no ink in the image")
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
        parent = f"{dataset.images_dir}/" if dataset.images_dir else ""
        layout = f"{parent}1/ .. {parent}{max(dataset.folders)}/"
        what = f"no {dataset.images_dir}/ folder" if dataset.images_dir else "not a folder"
        raise DataError(src, f"{what}; expected the {dataset.name} folder holding {layout}")
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
