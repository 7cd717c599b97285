"""synth.json: which settings two synthetic sets differ in, and what counts as a dataset in a folder."""

from __future__ import annotations

from pathlib import Path

from bengaliai.synth.manifest import dataset_files, read_manifest, setting_changes

OLD = {
    "n_train": 6000, "seed": 0, "render": {"pen_p": 0.5, "fonts": ["a.ttf"]},
    "graphemes": {"mode": "seen", "distinct_seen": 1295}, "letterforms": {"config": {"p": 1.0}, "drawn": {"real": 9}},
    "complete": True,
}


def test_setting_changes_name_dotted_keys_and_leave_out_what_was_drawn() -> None:
    same = {**OLD, "graphemes": {"mode": "seen", "distinct_seen": 1200}, "letterforms": {"config": {"p": 1.0}}}
    assert setting_changes(OLD, same | {"complete": False}) == []
    new = {**same, "n_train": 200840, "render": {"pen_p": 0.8, "fonts": ("a.ttf", "b.ttf")}, "id_prefix": "LF"}
    assert setting_changes(OLD, new) == [
        "n_train 6000 -> 200840", "render.pen_p 0.5 -> 0.8", 'render.fonts ["a.ttf"] -> ["a.ttf", "b.ttf"]',
        "id_prefix None -> LF",
    ]
    assert setting_changes(OLD, {k: v for k, v in OLD.items() if k != "letterforms"}) == ["letterforms.config.p 1.0 -> None"]
    assert setting_changes({"render": {"fonts": ["x" * 60]}}, {"render": {"fonts": []}}) == [
        f'render.fonts ["{"x" * 35}... -> []'
    ]


def test_dataset_files_and_an_unreadable_manifest(tmp_path: Path) -> None:
    assert dataset_files(tmp_path / "missing") == [] and read_manifest(tmp_path) is None
    for name in ("train.csv", "test_image_data_0.parquet", "train_folds.csv", "notes.txt", "synth.json"):
        (tmp_path / name).write_text("{not json")
    assert dataset_files(tmp_path) == ["test_image_data_0.parquet", "train.csv"]
    assert read_manifest(tmp_path) is None
    (tmp_path / "synth.json").write_text('{"seed": 3}')
    assert read_manifest(tmp_path) == {"seed": 3}
