"""``bengaliai import banglalekha``: BanglaLekha-Isolated's root classes as competition training data.

BanglaLekha-Isolated (Biswas et al. 2017; Mendeley Data hf6sf8zrkc v2, no licence stated, so the
user fetches it and the project never ships it) holds 166,105 binarised PNGs of handwritten
characters in 84 class folders, white ink (255) on black, tightly cropped at the scan's own
resolution (so a tall ই is taller than a ক), from about 2,000 writers. The 73 folders that are
grapheme roots (``competition.BANGLALEKHA_ROOTS``) become graphemes (root, 0, 0) in OUT:
train.csv, train_image_data_{i}.parquet (at most 50,000 rows each), sources.csv (each image's
file, writer and the other fields of its file name) and import.json. Ids are ``BLI_<folder>_<i>``,
``i`` the file's place in its folder sorted by name, so they never collide with ``Train_*``.

File names are ``DD_IIII_G_AA_MMDD_FFFF_C.png``: district, institution, gender (0 male), age,
collection date in 2016, form serial, class. The form serial identifies the writer (1,989 forms,
one per writer), which is what to group folds by. The class in the name disagrees with the folder
for 47 files (folder 74 named 75); the images are ম্ব, so the folder is the label.

BanglaLekha's images are 95-210 px a side; the basic consonants' ink is about 103 px high and
its strokes 8.8 px thick (6.5-12), so ``placement`` scales them by 0.5-0.85 and thins them a little
to look like the competition's. The import itself is ``folder_import.import_folders``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bengaliai.core.competition import BANGLALEKHA_FOLDERS, BANGLALEKHA_ROOTS
from bengaliai.handwriting.class_folders import (  # noqa: F401  (re-exported: the BanglaLekha names of the engine)
    FolderDataset,
    SourceImage,
    read_character,
    scan_folders,
)
from bengaliai.handwriting.folder_import import (  # noqa: F401  (re-exported: the BanglaLekha names of the engine)
    IMPORT_JSON,
    MAX_BAD,
    MAX_ROWS_PER_FILE,
    SOURCES_CSV,
    file_sizes,
    image_rng,
    import_folders,
)
from bengaliai.handwriting.placement import PlacementConfig

IMAGES_DIR = "Images"
ID_PREFIX = "BLI"
_NAME = re.compile(r"(\d{2})_(\d{4})_(\d)_(\d{2})_(\d{4})_(\d{4})_(\d{1,2})")
SOURCE_COLUMNS = ("image_id", "path", "writer", "district", "institution", "gender", "age", "date")


def parse_file_name(name: str) -> dict[str, str]:
    """The fields of a dataset file name (writer = form serial); empty strings when it does not parse."""
    match = _NAME.fullmatch(Path(name).stem)
    if match is None:
        return dict.fromkeys(SOURCE_COLUMNS[2:], "")
    district, institution, gender, age, date, form, _ = match.groups()
    return {
        "writer": form, "district": district, "institution": institution,
        "gender": {"0": "male", "1": "female"}.get(gender, gender), "age": age, "date": f"2016{date}",
    }


BANGLALEKHA = FolderDataset(
    name="BanglaLekha-Isolated (Mendeley Data hf6sf8zrkc v2)",
    command="import banglalekha",
    folders=frozenset(range(1, BANGLALEKHA_FOLDERS + 1)),
    labels={folder: (root, 0, 0) for folder, root in BANGLALEKHA_ROOTS.items()},
    id_prefix=ID_PREFIX,
    suffixes=(".png",),
    images_dir=IMAGES_DIR,
    name_fields=parse_file_name,
    field_names=SOURCE_COLUMNS[2:],
)


def scan_source(src: Path, limit_per_class: int | None = None) -> list[SourceImage]:
    """The images of the root classes under SRC/Images, by folder number then file name."""
    return scan_folders(src, BANGLALEKHA, limit_per_class)


def import_banglalekha(
    src: Path,
    out: Path,
    seed: int = 0,
    workers: int = 1,
    limit_per_class: int | None = None,
    config: PlacementConfig | None = None,
    max_rows_per_file: int = MAX_ROWS_PER_FILE,
    max_bad: int = MAX_BAD,
    force: bool = False,
) -> dict[str, Any]:
    """Write the root classes of BanglaLekha-Isolated at SRC into OUT in competition training format.

    Returns the manifest also written to OUT/import.json.
    """
    return import_folders(
        BANGLALEKHA, src, out, seed, workers, limit_per_class, config, max_rows_per_file, max_bad, force
    )
