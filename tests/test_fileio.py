"""Atomic writes leave either the complete file or nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bengaliai.fileio import atomic_path, write_csv, write_json


def test_atomic_path_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".txt" and tmp != target
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_write_csv_and_json_keep_unicode(tmp_path: Path) -> None:
    frame = pd.DataFrame({"image_id": ["Train_0"], "grapheme": ["র\u200d্যা"]})
    write_csv(frame, tmp_path / "a.csv")
    assert (tmp_path / "a.csv").read_bytes() == "image_id,grapheme\nTrain_0,র\u200d্যা\n".encode()
    write_json({"grapheme": "ক্ট্রো"}, tmp_path / "a.json")
    assert "ক্ট্রো" in (tmp_path / "a.json").read_text(encoding="utf-8")
