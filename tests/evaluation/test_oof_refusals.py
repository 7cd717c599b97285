"""What ``bengaliai oof`` refuses to score as one experiment: folds trained with different settings, damaged oof.npz."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from bengaliai.core.errors import BengaliaiError, DataError
from bengaliai.evaluation.oof import OOF_NPZ, evaluate_oof
from bengaliai.evaluation.oof_report import OOF_JSON


@pytest.fixture
def tiny_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of tiny_run without its checkpoints and images (oof reads neither); returns its runs/tiny."""
    root = tmp_path / "copy"
    shutil.copytree(tiny_run.parent.parent, root, ignore=shutil.ignore_patterns("*.pt", "*.parquet", "resize48*"))
    return root / "runs" / tiny_run.name


def edit_config(run_dir: Path, section: str, **settings: object) -> None:
    """Change settings of a fold's config.yaml, as if the fold had been trained with them."""
    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config[section] |= settings
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def test_folds_trained_with_different_settings_are_refused_by_name(tiny_copy: Path) -> None:
    input_dir = tiny_copy.parent.parent / "input"
    edit_config(tiny_copy / "fold0", "model", aux_graphemes=True)
    edit_config(tiny_copy / "fold2", "model", arch="resnet34")
    expected = (f"{tiny_copy}: its folds were trained with different settings: model.arch (fold0, fold1: resnet10; "
                "fold2: resnet34), model.aux_graphemes (fold0: true; fold1, fold2: false); an out-of-fold score of "
                "them is no one setting's: retrain the odd folds with the experiment's settings, or move them "
                "(their fold<K> folders) into an experiment folder of their own")
    with pytest.raises(BengaliaiError, match=f"^{re.escape(expected)}$"):
        evaluate_oof(tiny_copy, input_dir=input_dir)
    assert not (tiny_copy / OOF_JSON).exists()

    # The way out: fold2 moved into an experiment of its own, fold0 retrained (here: its setting restored).
    other = tiny_copy.parent / "tiny_r34"
    other.mkdir()
    shutil.move(tiny_copy / "fold2", other / "fold2")
    edit_config(tiny_copy / "fold0", "model", aux_graphemes=False)
    assert evaluate_oof(tiny_copy, input_dir=input_dir).folds == (0, 1)
    assert evaluate_oof(other, input_dir=input_dir).folds == (2,)


def test_settings_of_where_and_how_fast_may_differ_between_folds(tiny_copy: Path) -> None:
    before = evaluate_oof(tiny_copy, input_dir=tiny_copy.parent.parent / "input")
    edit_config(tiny_copy / "fold1", "data", workers=4, batch_size=32, cache_dir="/scratch")
    edit_config(tiny_copy / "fold1", "model", pretrained="/kaggle/input/weights/resnet10.pth")
    edit_config(tiny_copy / "fold2", "optim", lr=3e-3)  # the recipe is not what the folds' models are
    after = evaluate_oof(tiny_copy, input_dir=tiny_copy.parent.parent / "input")
    assert after.score == before.score and after.folds == (0, 1, 2)


@pytest.mark.parametrize("damage", ["empty", "truncated", "not_a_zip", "corrupt"])
def test_a_damaged_oof_npz_is_one_line_naming_the_file_and_what_to_do(tiny_copy: Path, damage: str) -> None:
    path = tiny_copy / "fold1" / OOF_NPZ
    data = bytearray(path.read_bytes())
    if damage == "corrupt":  # a flipped byte inside the root probabilities: the zip's checksum fails on reading
        data[len(data) // 2] ^= 0xFF
    damaged = {"empty": b"", "truncated": data[: len(data) // 2], "not_a_zip": b"not an npz file\n"}.get(damage, data)
    path.write_bytes(damaged)
    found = {"empty": re.escape("an empty file (0 bytes)"),
             "truncated": re.escape(f"not an .npz archive (no zip directory in its {len(damaged)} bytes)"),
             "not_a_zip": re.escape(f"not an .npz archive (no zip directory in its {len(damaged)} bytes)"),
             "corrupt": r"not a readable \.npz file \(BadZipFile: Bad CRC-32 for file 'grapheme_root\.npy'\)"}[damage]
    expected = re.escape(f"; fold1's run is damaged (a copy or write cut short): restore the file from a copy of the "
                         f"run, or retrain the fold (move {path.parent} aside, then `bengaliai train --fold 1` with "
                         "the experiment's settings)")
    with pytest.raises(DataError, match=f"^{re.escape(str(path))}: {found}{expected}$") as error:
        evaluate_oof(tiny_copy, input_dir=tiny_copy.parent.parent / "input")
    assert "\n" not in str(error.value)
    assert not (tiny_copy / OOF_JSON).exists()
