"""Training sources read from their caches: labels follow the cached images, an extra source is checked and masked."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bengaliai.core.competition import COMPONENTS, compose, seen_graphemes
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


SIZE48 = PreprocessConfig(mode="resize", size=48)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An extra source of 12 images prepared as resize48, and the same ids with other images, unprepared: made once."""
    root = tmp_path_factory.mktemp("sources")
    write_pattern_dataset(root / "handwriting", 12, n_files=1, prefix="HW")
    prepare(root / "handwriting", SIZE48, workers=1, splits=("train",))
    write_pattern_dataset(root / "reimported", 12, seed=9, n_files=1, prefix="HW")
    return root


@pytest.fixture
def prepared(sources: Path, tmp_path: Path) -> Path:
    """A copy (times kept) of the prepared source that a test may change."""
    shutil.copytree(sources / "handwriting", tmp_path / "handwriting")
    return tmp_path / "handwriting"


def test_a_freshly_prepared_source_opens_without_a_word(prepared: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        open_extra(prepared, "resize48", cache_settings(prepared, "resize48"))
        open_source(prepared, "resize48")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_source_reimported_after_prepare_is_refused_until_prepared_again(prepared: Path, sources: Path) -> None:
    settings = cache_settings(prepared, "resize48")
    stale = np.load(prepared / "cache" / "resize48" / "train_image_data_0.npy")
    for name in ("train.csv", "train_image_data_0.parquet"):  # the same ids, other images: as a new import writes
        shutil.copy(sources / "reimported" / name, prepared / name)
    expected = (
        r"handwriting/train_image_data_0.parquet: changed since the resize48 cache .*handwriting/cache/resize48 "
        r"was prepared from it \(then \d+ bytes, modified \d{4}-\d\d-\d\d \d\d:\d\d:[\d.]+; "
        r"now \d+ bytes, modified .*\): its cached images are stale; "
        rf"run `bengaliai prepare --input {prepared} --splits train --mode resize --size 48`$"
    )
    with pytest.raises(DataError, match=expected):
        open_extra(prepared, "resize48", settings)
    prepare(prepared, SIZE48, workers=1, splits=("train",))
    store, _ = open_extra(prepared, "resize48", settings)
    assert (store.gather(np.arange(12)) != stale).mean() > 0.05  # what it would have trained on was stale


def test_a_main_parquet_touched_after_prepare_is_refused(prepared: Path) -> None:
    parquet = prepared / "train_image_data_0.parquet"
    stat = parquet.stat()
    os.utime(parquet, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(DataError, match=r"train_image_data_0.parquet: changed since the resize48 cache .*"
                                        rf"then {stat.st_size} bytes, modified .*; now {stat.st_size} bytes"):
        open_source(prepared, "resize48")


def test_a_cache_elsewhere_names_its_cache_dir_in_the_fix(prepared: Path, tmp_path: Path) -> None:
    shutil.move(prepared / "cache", tmp_path / "caches")  # as prepare --cache-dir writes it
    open_source(prepared, "resize48", tmp_path / "caches")
    parquet = prepared / "train_image_data_0.parquet"
    os.utime(parquet, ns=(parquet.stat().st_atime_ns, parquet.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataError, match=rf"--mode resize --size 48 --cache-dir {tmp_path / 'caches'}`$"):
        open_source(prepared, "resize48", tmp_path / "caches")


def test_a_parquet_added_after_prepare_is_refused(prepared: Path) -> None:
    shutil.copy2(prepared / "train_image_data_0.parquet", prepared / "train_image_data_1.parquet")
    with pytest.raises(DataError, match=r"train_image_data_1.parquet: not in the resize48 cache .*: its images would "
                                        r"be left out; run `bengaliai prepare --input"):
        open_source(prepared, "resize48")


def test_a_cache_that_does_not_record_its_sources_is_refused(prepared: Path) -> None:
    meta_path = prepared / "cache" / "resize48" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["files"]["train_image_data_0.parquet"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"train_image_data_0.parquet: the resize48 cache .* does not record what it "
                                        r"was prepared from .*; run `bengaliai prepare --input"):
        open_source(prepared, "resize48")


def test_a_source_whose_parquet_is_gone_trains_on_its_cache_with_a_warning(
    prepared: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (prepared / "train_image_data_0.parquet").unlink()
    with caplog.at_level(logging.WARNING):
        store, _ = open_source(prepared, "resize48")
    assert len(store) == 12
    assert "train_image_data_0.parquet is gone: its cached images in" in caplog.text


def test_labels_without_a_cached_image_are_refused_by_name(prepared: Path) -> None:
    labels = pd.read_csv(prepared / "train.csv")
    more = labels.iloc[:7].assign(image_id=[f"HW_new_{i}" for i in range(7)])
    pd.concat([labels, more]).to_csv(prepared / "train.csv", index=False)
    with pytest.raises(DataError, match=r"handwriting/train.csv: 7 of 19 image ids have no image in the cache "
                                        r".*resize48: HW_new_0, HW_new_1, HW_new_2, HW_new_3, HW_new_4, \.\.\.; "):
        open_extra(prepared, "resize48", cache_settings(prepared, "resize48"))
    store = ImageStore([np.zeros((1, 16, 16), dtype=np.uint8)], ["Train_0"])
    frame = pd.DataFrame({"image_id": ["Train_0", "Train_9"], "grapheme_root": [1, 2], "vowel_diacritic": [0, 0],
                          "consonant_diacritic": [0, 0], "grapheme": ["a", "b"]})
    with pytest.raises(DataError, match=r"train.csv: 1 of 2 image ids have no image in the cache: Train_9"):
        align_labels(store, frame, "train.csv")


def test_a_grapheme_text_that_disagrees_with_its_labels_is_refused(prepared: Path) -> None:
    settings = cache_settings(prepared, "resize48")
    labels = pd.read_csv(prepared / "train.csv", dtype=str, keep_default_na=False)
    other = compose(13, 1, 2)
    assert labels.loc[3, "grapheme"] != other
    found, triple = labels.loc[3, "grapheme"], labels.loc[3, list(COMPONENTS)]
    labels.loc[3, "grapheme"] = other
    labels.to_csv(prepared / "train.csv", index=False)
    with pytest.raises(DataError, match=rf"handwriting/train.csv: line 5: grapheme {other!r} is not what its labels "
                                        rf"spell: grapheme_root {triple.iloc[0]}, vowel_diacritic {triple.iloc[1]}, "
                                        rf"consonant_diacritic {triple.iloc[2]} spell {found!r}"):
        open_extra(prepared, "resize48", settings)
    # A source that supervises the root only does not use the grapheme nor the other labels.
    open_extra(prepared, "resize48", settings, "root")
