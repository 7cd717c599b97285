"""``bengaliai import compounds``: handwritten conjuncts (compound characters) as competition training data.

The ``data/`` folder of github.com/ShahrearBinAmin/Bangla-OCR-Dataset (commit 03b188c9) holds 32,724
small JPEGs (42x28 px, dark ink on white, 100-250 per class) of handwritten Bengali compound
characters in 164 numbered class folders (1-168; 43-46 absent), apparently ordered by how common the
conjunct is (1 প্র, 3 ক্ষ, 5 ন্দ). The repository names neither the dataset's origin nor a licence and
ships no class list, so the project never ships its images and keeps its own folder -> grapheme map
(``competition.COMPOUND_GRAPHEMES``), read from the images class by class (see that map for how).
Folders whose reading is not sure are left out.

Each image becomes a grapheme (root, vowel, consonant): mostly a conjunct root alone, some with
ra-phala (প্র = root প, consonant diacritic 5). The ink is about 24 px high and 1.6 px thick: each
image is enlarged 4 times (bicubic) and its ink thresholded near the paper (grey 200), so the thin,
faint JPEG strokes stay whole and smooth instead of breaking into dashes, and ``placement`` scales that
by 0.72-1.03 (70-100 px high, strokes thinned to 4-6 px) into the 137x236 frame. Ids are
``CMP_<folder>_<i>``. The import is ``folder_import.import_folders(COMPOUNDS, ...)``.
"""

from __future__ import annotations

from bengaliai.core.competition import COMPOUND_FOLDERS, COMPOUND_GRAPHEMES
from bengaliai.handwriting.class_folders import FolderDataset
from bengaliai.handwriting.placement import PlacementConfig

ID_PREFIX = "CMP"

COMPOUNDS = FolderDataset(
    name="handwritten compound characters (github.com/ShahrearBinAmin/Bangla-OCR-Dataset, data/)",
    command="import compounds",
    folders=COMPOUND_FOLDERS,
    labels=COMPOUND_GRAPHEMES,
    id_prefix=ID_PREFIX,
    suffixes=(".jpg", ".jpeg", ".png"),
    placement=PlacementConfig(scale=(0.725, 1.025), upsample=4, ink_threshold=200),
)

