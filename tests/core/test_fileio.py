"""Atomic writes leave either the complete file or nothing."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import atomic_path, check_folder, ensure_writable, make_folder, write_csv, write_json


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


def test_ensure_writable_creates_the_folder_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.csv"
    ensure_writable(target)
    assert target.parent.is_dir() and list(target.parent.iterdir()) == []


# Tests run as root, where chmod does not stop writes: a parent that is a file and /proc fail for everyone.
@pytest.mark.parametrize("below", ["out.csv", "sub/out.csv"])
def test_ensure_writable_names_a_parent_that_is_a_file(tmp_path: Path, below: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BengaliaiError, match=re.escape(f"cannot write {blocker / below}: {blocker} is a file, not a folder")):
        ensure_writable(blocker / below)


def test_ensure_writable_refuses_proc_and_folders(tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match=r"^cannot write /proc/sub\.csv: /proc does not accept new files \(.+\)$"):
        ensure_writable(Path("/proc/sub.csv"))
    with pytest.raises(BengaliaiError, match=r"^cannot write /proc/new/sub\.csv: cannot create the folder /proc/new \(.+\)$"):
        ensure_writable(Path("/proc/new/sub.csv"))
    with pytest.raises(BengaliaiError, match="it is a folder"):
        ensure_writable(tmp_path)


def test_a_failing_cleanup_never_hides_the_first_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # On a read-only disk the unlink of the temporary file fails too: the block's error must win.
    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", refuse)
    with caplog.at_level(logging.WARNING), pytest.raises(RuntimeError, match="boom"), atomic_path(tmp_path / "o.csv"):
        raise RuntimeError("boom")
    assert "could not remove the temporary file" in caplog.text


def test_a_write_error_on_the_temporary_file_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "o.csv"
    with pytest.raises(BengaliaiError, match=re.escape(f"cannot write {target}: Read-only file system")), atomic_path(target) as tmp:
        raise OSError(30, "Read-only file system", str(tmp))
    with pytest.raises(FileNotFoundError), atomic_path(target):
        open(tmp_path / "absent" / "input.txt")  # an error about another file passes through as it is


def test_a_failing_rename_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(src: object, dst: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    target = tmp_path / "o.csv"
    with pytest.raises(BengaliaiError, match=rf"^cannot write {re.escape(str(target))}: renaming \S+ into place failed \(Read-only file system\)$"):
        write_csv(pd.DataFrame({"a": [1]}), target)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_make_folder_creates_it_and_names_a_file_in_the_way(tmp_path: Path) -> None:
    assert make_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    make_folder(tmp_path / "a" / "b")  # an existing folder is fine
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BengaliaiError, match=re.escape(f"cannot write to {blocker}: it is a file, not a folder")):
        check_folder(blocker)
    for below in (blocker / "out", blocker / "sub" / "out"):
        with pytest.raises(BengaliaiError, match=re.escape(f"cannot write to {below}: {blocker} is a file, not a folder")):
            make_folder(below)
    with pytest.raises(BengaliaiError, match=r"^cannot write to /proc/new/sub: cannot create the folder /proc/new \(.+\)$"):
        make_folder(Path("/proc/new/sub"))
    check_folder(tmp_path / "not" / "yet")
    assert not (tmp_path / "not").exists()  # checked, not created
