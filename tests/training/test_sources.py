"""Training sources read from their caches: labels follow the cached images, an extra source is checked and masked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bengaliai.core.competition import seen_graphemes
from bengaliai.core.errors import DataError
from bengaliai.data.prepare import cache_settings, prepare
from bengaliai.data.preprocess import PreprocessConfig
from bengaliai.data.supervision import AUX_IGNORED, IGNORED
from bengaliai.training.loader import ImageStore
from bengaliai.training.sources import align_labels, open_extra, open_source

from builders import write_pattern_dataset


def test_labels_follow_the_store_and_index_seen_graphemes() -> None:
    store = ImageStore([np.zeros((2, 16, 16), dtype=np.uint8), np.zeros((1, 16, 16), dtype=np.uint8)],
                       ["Train_0", "Train_1", "Train_2"])
    first = seen_graphemes()[7]
    frame = pd.DataFrame(
        {
            "image_id": ["Train_2", "Train_0", "Train_1"],
            "grapheme_root": [1, 2, 3],
            "vowel_diacritic": [0, 1, 2],
            "consonant_diacritic": [0, 0, 1],
            "grapheme": ["not-a-grapheme", first.text, first.text],
        }
    )
    labels = align_labels(store, frame, "train.csv")
    assert labels.tolist() == [[2, 1, 0, 7], [3, 2, 1, 7], [1, 0, 0, -1]]
    with pytest.raises(DataError, match="1 cached images have no labels, e.g. Train_1"):
        align_labels(store, frame.iloc[:2], "train.csv")


def test_an_extra_source_is_masked_to_its_heads_and_refused_when_prepared_otherwise(tmp_path: Path) -> None:
    folder = tmp_path / "handwriting"
    write_pattern_dataset(folder, 12, n_files=1, prefix="HW")
    prepare(folder, PreprocessConfig(mode="resize", size=48), workers=1, splits=("train",))
    settings = cache_settings(folder, "resize48")
    store, labels = open_source(folder, "resize48")
    assert store.image_ids == [f"HW_{i}" for i in range(12)] and labels.shape == (12, 4)
    _, masked = open_extra(folder, "resize48", settings, "root")
    assert np.array_equal(masked[:, 0], labels[:, 0])
    assert (masked[:, 1:3] == IGNORED).all() and (masked[:, 3] == AUX_IGNORED).all()
    assert np.array_equal(open_extra(folder, "resize48", settings)[1], labels)
    with pytest.raises(DataError, match="but the main input's cache was prepared with"):
        open_extra(folder, "resize48", settings | {"size": 40})
