"""predict: streamed test inference, fold ensemble, TTA views, prior correction, a valid submission."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPONENTS, N_CLASSES, TEST_CSV
from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.core.fileio import write_csv, write_json
from bengaliai.data.labels import read_test_rows
from bengaliai.data.prepare import find_image_files
from bengaliai.evaluation.priors import apply_prior
from bengaliai.inference import ensemble as ensemble_module
from bengaliai.inference import predict as predict_module
from bengaliai.inference.checkpoints import fold_checkpoints, load_models
from bengaliai.inference.ensemble import TTA_VIEWS, Ensemble, InferenceConfig, view
from bengaliai.inference.predict import predict, predict_files

FP32 = InferenceConfig(precision="fp32")


def _input(run: Path) -> Path:
    return run.parent.parent / "input"


def test_submission_follows_test_csv_and_probabilities_are_saved(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub.csv"
    result = predict(tiny_run, folds="all", out=out, alpha=0, workers=1)
    submission = pd.read_csv(out)
    rows = read_test_rows(_input(tiny_run) / TEST_CSV)
    assert list(submission.columns) == ["row_id", "target"]
    assert submission["row_id"].tolist() == rows["row_id"].tolist()
    for name in COMPONENTS:
        targets = submission["target"][rows["component"] == name]
        assert targets.between(0, N_CLASSES[name] - 1).all()
    saved = np.load(result.probabilities)
    assert len(saved["image_id"]) == result.n_images == 60
    for name in COMPONENTS:
        assert saved[name].shape == (60, N_CLASSES[name])
        np.testing.assert_allclose(saved[name].sum(axis=1), 1.0, atol=1e-4)
    # The synthetic-style test labels are there, so predict scores itself; three trained folds beat chance (~0.29).
    assert result.folds == (0, 1, 2)
    assert result.test_score is not None and result.test_score["score"] > 0.5
    by_row = dict(zip(submission["row_id"], submission["target"], strict=True))
    first = str(saved["image_id"][0])
    assert by_row[f"{first}_grapheme_root"] == saved["grapheme_root"][0].argmax()


def test_ensemble_is_the_mean_of_the_folds(tiny_run: Path, tmp_path: Path) -> None:
    probs = {}
    for folds in ("0", "1", "0,1"):
        result = predict(tiny_run, folds=folds, out=tmp_path / f"{folds}.csv", config=FP32, alpha=0, workers=1)
        probs[folds] = np.load(result.probabilities)
    for name in COMPONENTS:
        np.testing.assert_allclose(probs["0,1"][name], (probs["0"][name] + probs["1"][name]) / 2, atol=1e-6)


def test_test_images_get_the_training_preprocessing(tiny_run: Path) -> None:
    # Run fold 0 over the *training* parquet files: the probabilities of its validation images must be
    # the ones training computed from the prepared cache, i.e. no train/test skew.
    models, device = load_models(fold_checkpoints(tiny_run, "0"), FP32)
    ids, probabilities = predict_files(Ensemble(models, FP32, device), find_image_files(_input(tiny_run), ("train",)), 1)
    oof = np.load(tiny_run / "fold0" / "oof.npz")
    rows = pd.Index(ids).get_indexer(oof["image_id"])
    assert (rows >= 0).all()
    for name in COMPONENTS:
        np.testing.assert_allclose(probabilities[name][rows], oof[name], atol=1e-5)


def test_block_size_does_not_change_the_result(tiny_run: Path) -> None:
    models, device = load_models(fold_checkpoints(tiny_run, "2"), FP32)
    ensemble = Ensemble(models, FP32, device)
    files = find_image_files(_input(tiny_run), ("test",))
    ids_small, small = predict_files(ensemble, files, 2, block_images=7)
    ids_big, big = predict_files(ensemble, files, 1, block_images=4096)
    assert ids_small == ids_big
    for name in COMPONENTS:
        np.testing.assert_allclose(small[name], big[name], atol=1e-6)


def test_tta_views_move_the_image_and_average() -> None:
    image = torch.zeros(1, 1, 20, 20)
    image[0, 0, 8:12, 8:12] = 1.0
    assert torch.equal(view(image, 0.0, 0.0, 1.0), image)
    shifted = view(image, 0.1, 0.0, 1.0)  # a tenth of the width: 2 pixels to the right
    assert torch.allclose(shifted[0, 0, 8:12, 10:14], torch.ones(4, 4), atol=1e-5)
    assert shifted[0, 0, :, :10].abs().sum() < 1e-5
    smaller = view(image, 0.0, 0.0, 0.5)
    assert 0 < smaller.sum() < image.sum()


def test_tta_averages_several_views(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = np.load(predict(tiny_run, folds="0", out=tmp_path / "a.csv", config=FP32, alpha=0, workers=1).probabilities)
    config = InferenceConfig(precision="fp32", tta=3)
    three = np.load(predict(tiny_run, folds="0", out=tmp_path / "b.csv", config=config, alpha=0, workers=1).probabilities)
    assert not np.allclose(one["grapheme_root"], three["grapheme_root"])
    np.testing.assert_allclose(three["vowel_diacritic"].sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(BengaliaiError, match="tta"):
        InferenceConfig(tta=99)
    # tta=3 is the mean of the first three views' probabilities, each predicted here as the only view
    # (over the first test file, to keep it short).
    models, device = load_models(fold_checkpoints(tiny_run, "0"), FP32)
    files = find_image_files(_input(tiny_run), ("test",))[:1]
    views = []
    for single in TTA_VIEWS[:3]:
        with monkeypatch.context() as patch:
            patch.setattr(ensemble_module, "TTA_VIEWS", (single,))
            ids, probabilities = predict_files(Ensemble(models, FP32, device), files, 1)
        views.append(probabilities)
    rows = pd.Index(three["image_id"]).get_indexer(ids)
    assert len(ids) >= 20 and (rows >= 0).all()
    for name in COMPONENTS:
        np.testing.assert_allclose(views[0][name], one[name][rows], atol=1e-6)  # the first view is the image itself
        assert not np.allclose(views[1][name], views[0][name]) and not np.allclose(views[2][name], views[0][name])
        np.testing.assert_allclose(three[name][rows], np.mean([v[name] for v in views], axis=0), atol=1e-6)


def test_prior_correction_uses_the_tuned_alpha(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "runs" / "tiny"
    shutil.copytree(tiny_run, run)
    counts = {name: list(range(1, N_CLASSES[name] + 1)) for name in COMPONENTS}
    write_json({"prior": {"alpha": 1.0, "class_counts": counts}}, run / "oof.json")
    input_dir = _input(tiny_run)
    auto = predict(run, input_dir=input_dir, out=tmp_path / "auto.csv", config=FP32, workers=1)
    assert auto.alpha == 1.0
    saved = np.load(auto.probabilities)
    corrected = apply_prior({n: saved[n] for n in COMPONENTS}, counts, 1.0)
    submission = pd.read_csv(tmp_path / "auto.csv")
    rows = read_test_rows(input_dir / TEST_CSV)
    positions = pd.Index(saved["image_id"]).get_indexer(rows["image_id"])
    for name in COMPONENTS:
        mask = (rows["component"] == name).to_numpy()
        np.testing.assert_array_equal(submission["target"][mask], corrected[name].argmax(1)[positions[mask]])
    off = predict(run, input_dir=input_dir, out=tmp_path / "off.csv", config=FP32, alpha=0, workers=1)
    assert off.alpha == 0.0


def test_explicit_alpha_without_oof_reads_the_training_labels(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = []

    def spy(probabilities: dict[str, np.ndarray], counts: dict[str, np.ndarray], alpha: float) -> dict[str, np.ndarray]:
        used.append((counts, alpha))
        return apply_prior(probabilities, counts, alpha)

    monkeypatch.setattr(predict_module, "apply_prior", spy)
    result = predict(tiny_run, out=tmp_path / "s.csv", config=FP32, alpha=0.5, workers=1)
    assert result.alpha == 0.5
    # The correction used the class counts of the run's train.csv, counted here (every class, zeros
    # for the ones it lacks), and the submission is the argmax of p / freq**0.5 with them.
    assert not (tiny_run / "oof.json").exists()
    input_dir = _input(tiny_run)
    train = pd.read_csv(input_dir / "train.csv")
    counts = {name: np.bincount(train[name], minlength=N_CLASSES[name]) for name in COMPONENTS}
    assert len(used) == 1 and used[0][1] == 0.5
    assert set(used[0][0]) == set(COMPONENTS)
    for name in COMPONENTS:
        np.testing.assert_array_equal(np.asarray(used[0][0][name]), counts[name])
    saved = np.load(result.probabilities)
    assert float(saved["prior_alpha"]) == 0.5
    corrected = apply_prior({n: saved[n] for n in COMPONENTS}, counts, 0.5)
    submission = pd.read_csv(tmp_path / "s.csv")
    rows = read_test_rows(input_dir / TEST_CSV)
    positions = pd.Index(saved["image_id"]).get_indexer(rows["image_id"])
    for name in COMPONENTS:
        mask = (rows["component"] == name).to_numpy()
        np.testing.assert_array_equal(submission["target"][mask], corrected[name].argmax(1)[positions[mask]])


def test_a_test_image_without_pixels_fails_before_writing(tiny_run: Path, tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    shutil.copytree(_input(tiny_run), input_dir)
    rows = pd.read_csv(input_dir / TEST_CSV)
    extra = pd.DataFrame({"row_id": [f"Test_999_{c}" for c in ("consonant_diacritic", "grapheme_root", "vowel_diacritic")],
                          "image_id": "Test_999", "component": ["consonant_diacritic", "grapheme_root", "vowel_diacritic"]})
    write_csv(pd.concat([rows, extra]), input_dir / TEST_CSV)
    out = tmp_path / "sub.csv"
    with pytest.raises(DataError, match="Test_999"):
        predict(tiny_run, input_dir=input_dir, out=out, alpha=0, workers=1)
    assert not out.exists()


def test_cli_predict_prints_where_the_submission_is(tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.csv"
    code = main(["predict", "--run", str(tiny_run), "--folds", "1", "--alpha", "0", "--out", str(out), "--workers", "1"])
    assert code == 0
    assert out.exists() and out.with_suffix(".npz").exists()
    assert "test score" in capsys.readouterr().out
    assert main(["predict", "--run", str(tmp_path), "--out", str(out)]) == 2


def test_an_image_id_in_two_test_files_fails_before_the_inference(tmp_path: Path) -> None:
    from bengaliai.data.parquet_images import write_image_parquet

    images = np.full((2, 137, 236), 255, dtype=np.uint8)
    write_image_parquet(tmp_path / "test_image_data_0.parquet", ["Test_0", "Test_1"], images)
    write_image_parquet(tmp_path / "test_image_data_1.parquet", ["Test_2", "Test_1"], images)

    def never(images: np.ndarray) -> None:
        raise AssertionError("an image was predicted before the ids were checked")

    ensemble = SimpleNamespace(models=[SimpleNamespace(preprocess={})], predict=never)
    files = find_image_files(tmp_path, ("test",))
    with pytest.raises(DataError, match=r"test_image_data_1\.parquet: image_id 'Test_1' is also in .*test_image_data_0\.parquet"):
        predict_files(ensemble, files, workers=1)  # type: ignore[arg-type]
    write_image_parquet(tmp_path / "test_image_data_1.parquet", ["Test_2", "Test_2"], images)
    with pytest.raises(DataError, match=r"test_image_data_1\.parquet, row 1: duplicate image_id 'Test_2'"):
        predict_files(ensemble, files, workers=1)  # type: ignore[arg-type]


def test_an_out_that_is_no_submission_is_refused_and_kept(tiny_run: Path, tmp_path: Path) -> None:
    # A mistyped --out (the input's train.csv) must not cost the dataset; an earlier submission is replaced.
    labels = tmp_path / "train.csv"
    labels.write_text("image_id,grapheme_root\nTrain_0,3\n", encoding="utf-8")
    before = labels.read_bytes()
    with pytest.raises(BengaliaiError, match=r"train\.csv exists and is no submission .*'image_id,grapheme_root'"):
        predict(tiny_run, out=labels, alpha=0, workers=1)
    assert labels.read_bytes() == before and not labels.with_suffix(".npz").exists()
    other = tmp_path / "sub.npz"
    np.savez(other, weights=np.zeros(3))
    with pytest.raises(BengaliaiError, match=r"sub\.npz exists and holds no predicted probabilities"):
        predict(tiny_run, out=tmp_path / "sub.csv", alpha=0, workers=1)
    other.unlink()
    first = predict(tiny_run, out=tmp_path / "sub.csv", alpha=0, workers=1, folds="0")
    predict(tiny_run, out=tmp_path / "sub.csv", alpha=0, workers=1, folds="1")  # its own output: replaced
    assert first.submission.read_text(encoding="utf-8").startswith("row_id,target\n")
