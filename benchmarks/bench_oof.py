"""Time of ``bengaliai oof``'s gathering of out-of-fold rows against the naive id check it replaced.

Usage: python benchmarks/bench_oof.py [--train 200840] [--valid 46000] [--naive-scale 0.1]

Builds, in a temporary folder, a train.csv and folds file of ``--train`` images and one fold's
oof.npz of ``--valid`` ids (the shape of a full-size fold), then times ``oof.gather_oof`` (ids
matched by hashing) and the naive membership test ``np.isin(ids, index)`` on the same string ids:
numpy compares object arrays pair by pair, so the naive check grows with train x valid. The naive
row runs at ``--naive-scale`` of both sizes (a full-size naive run takes many minutes); the new
path runs at both sizes. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, N_CLASSES, TRAIN_CSV
from bengaliai.data.folds import FOLDS_CSV
from bengaliai.evaluation.oof import gather_oof


def make_case(root: Path, n_train: int, n_valid: int) -> tuple[dict[int, Path], pd.DataFrame, pd.DataFrame]:
    """train.csv, train_folds.csv and fold0/oof.npz of random labels and probabilities."""
    rng = np.random.default_rng(0)
    ids = np.array([f"Train_{i}" for i in range(n_train)], dtype=object)
    labels = pd.DataFrame({"image_id": ids, **{name: rng.integers(0, N_CLASSES[name], n_train) for name in COMPONENTS}})
    folds = pd.DataFrame({"image_id": ids, "fold": np.arange(n_train) % 5, "unseen": False})
    valid = rng.choice(np.flatnonzero(folds["fold"].to_numpy() == 0), size=min(n_valid, n_train // 5), replace=False)
    run = root / "fold0"
    run.mkdir(parents=True)
    probabilities = {name: rng.random((len(valid), N_CLASSES[name]), dtype=np.float32) for name in COMPONENTS}
    np.savez(run / "oof.npz", image_id=ids[valid].astype(str), **probabilities)
    labels.to_csv(root / TRAIN_CSV, index=False)
    folds.to_csv(root / FOLDS_CSV, index=False)
    return {0: run / "oof.npz"}, labels, folds


def time_new(root: Path, n_train: int, n_valid: int) -> float:
    npz, labels, folds = make_case(root, n_train, n_valid)
    start = time.perf_counter()
    gather_oof(npz, labels, folds, root / TRAIN_CSV, root / FOLDS_CSV)
    return time.perf_counter() - start


def time_naive(root: Path, n_train: int, n_valid: int) -> float:
    npz, labels, _ = make_case(root, n_train, n_valid)
    row_of = pd.Series(np.arange(len(labels)), index=labels["image_id"].to_numpy())
    with np.load(npz[0]) as data:
        ids = data["image_id"]
    start = time.perf_counter()
    missing = ids[~np.isin(ids, row_of.index)]  # what oof did before: object arrays compared pair by pair
    assert missing.size == 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=200_840)
    parser.add_argument("--valid", type=int, default=46_000)
    parser.add_argument("--naive-scale", type=float, default=0.1)
    args = parser.parse_args()
    small = (int(args.train * args.naive_scale), int(args.valid * args.naive_scale))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("naive np.isin", *small, time_naive(Path(tmp) / "a", *small)))
        rows.append(("gather_oof (hashing)", *small, time_new(Path(tmp) / "b", *small)))
        rows.append(("gather_oof (hashing)", args.train, args.valid, time_new(Path(tmp) / "c", args.train, args.valid)))
    print(f"{datetime.date.today()}, {platform.node()}, {platform.processor() or platform.machine()}")
    print("| method | train.csv images | out-of-fold ids | seconds |")
    print("|---|---|---|---|")
    for name, n_train, n_valid, seconds in rows:
        print(f"| {name} | {n_train:,} | {n_valid:,} | {seconds:.3f} |")
    print(f"\nratio at {small[0]:,} x {small[1]:,}: {rows[0][3] / rows[1][3]:.0f}x")


if __name__ == "__main__":
    main()
