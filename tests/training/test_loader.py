"""Training data plumbing: image store, epoch sampler, augmented batches, device input."""

from __future__ import annotations

import numpy as np
import torch

from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.inputs import DataConfig
from bengaliai.training.loader import AugmentedBatches, EpochBatches, ImageStore, to_model_input


def _store(sizes: tuple[int, ...] = (5, 3, 4), side: int = 16) -> ImageStore:
    arrays, ids, value = [], [], 0
    for n in sizes:
        images = np.zeros((n, side, side), dtype=np.uint8)
        for i in range(n):
            images[i, 0, 0] = value  # each image carries its global index
            ids.append(f"Train_{value}")
            value += 1
        arrays.append(images)
    return ImageStore(arrays, ids)


def test_gather_reads_across_files_in_the_asked_order() -> None:
    store = _store()
    indices = np.array([11, 0, 6, 5, 4, 7])
    batch = store.gather(indices)
    assert batch.flags.c_contiguous and batch.dtype == np.uint8
    assert batch[:, 0, 0].tolist() == indices.tolist()
    assert len(store) == 12 and store.image_shape == (16, 16)


def test_epoch_batches_are_seeded_permutations() -> None:
    sampler = EpochBatches(np.arange(100, 150), batch_size=8, seed=3)
    first = [b[2] for b in sampler]
    assert len(first) == len(sampler) == 6  # 50 // 8, last partial batch dropped
    assert len(np.unique(np.concatenate(first))) == 48
    assert all(np.array_equal(a, b[2]) for a, b in zip(first, sampler, strict=True))
    sampler.set_epoch(1)
    assert not np.array_equal(first[0], next(iter(sampler))[2])


def test_ranks_split_each_global_batch_and_resume_skips_done_batches() -> None:
    whole = [b[2] for b in EpochBatches(np.arange(40), 8, seed=1)]
    parts = [[b[2] for b in EpochBatches(np.arange(40), 8, seed=1, rank=r, world_size=2)] for r in range(2)]
    for b, batch in enumerate(whole):
        assert sorted(np.concatenate([parts[0][b], parts[1][b]]).tolist()) == sorted(batch.tolist())
    resumed = EpochBatches(np.arange(40), 8, seed=1)
    resumed.set_epoch(0, start_batch=3)
    assert [b[1] for b in resumed] == [3, 4]
    assert np.array_equal(next(iter(resumed))[2], whole[3])


def test_validation_order_keeps_every_image() -> None:
    sampler = EpochBatches(np.arange(10), 4, seed=0, shuffle=False, drop_last=False)
    assert np.concatenate([b[2] for b in sampler]).tolist() == list(range(10))


def test_augmented_batches_replay_exactly_for_the_same_key() -> None:
    store = _store((6,), side=32)
    for i in range(6):
        store.arrays[0][i, 8:24, 10:20] = 200
    labels = np.arange(18).reshape(6, 3)
    dataset = AugmentedBatches(store, labels, build_transform(AugmentConfig(affine_p=1.0)), seed=7)
    key = (2, 5, np.array([3, 1, 4]))
    images, batch_labels, indices = dataset[key]
    again, _, _ = dataset[key]
    other, _, _ = dataset[(3, 5, np.array([3, 1, 4]))]
    assert images.shape == (3, 1, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images, again)
    assert not torch.equal(images, other)
    assert batch_labels.tolist() == labels[[3, 1, 4]].tolist() and indices.tolist() == [3, 1, 4]


def test_model_input_is_normalised_float_on_the_device() -> None:
    images = torch.full((2, 1, 4, 4), 255, dtype=torch.uint8)
    config = DataConfig(mean=0.5, std=0.25)
    x = to_model_input(images, config, torch.device("cpu"), channels_last=True)
    assert x.dtype == torch.float32 and torch.allclose(x, torch.full_like(x, 2.0))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_a_store_of_cache_files_pickles_as_paths_not_images(tmp_path) -> None:  # noqa: ANN001
    """Loader workers started by spawn or forkserver get the store pickled: it must not carry the cache."""
    import pickle

    import pandas as pd

    files = []
    for f, n in enumerate((3000, 2000)):  # 5000 images of 64x64: 20 MB of pixels
        images = np.random.default_rng(f).integers(0, 256, (n, 64, 64), dtype=np.uint8)
        npy = tmp_path / f"train_image_data_{f}.npy"
        np.save(npy, images)
        pd.DataFrame({"image_id": [f"Train_{f}_{i}" for i in range(n)]}).to_csv(npy.with_suffix(".csv"), index=False)
        files.append(npy)
    store = ImageStore.from_files(files)
    blob = pickle.dumps(store)
    assert len(blob) < 4096, len(blob)
    copy = pickle.loads(blob)
    indices = np.array([4999, 0, 3000, 2999])
    assert np.array_equal(copy.gather(indices), store.gather(indices))
    assert copy.image_ids == store.image_ids and len(copy) == 5000 and copy.image_shape == (64, 64)
    assert isinstance(copy.arrays[0], np.memmap)
