"""An import's --out: files no import wrote are never replaced, another import only with --force, all or nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bengaliai.cli.main import main
from bengaliai.core.competition import COMPOUND_GRAPHEMES
from bengaliai.core.errors import BengaliaiError
from bengaliai.handwriting.banglalekha import import_banglalekha
from bengaliai.handwriting.compounds import COMPOUNDS
from bengaliai.handwriting.folder_import import import_folders
from bengaliai.handwriting.import_output import staged_folder

from fake_sources import make_banglalekha, make_compounds

BARE = min(f for f, (_, v, c) in COMPOUND_GRAPHEMES.items() if v == 0 and c == 0)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name and p.name.startswith(out.name))


def test_an_unrelated_train_csv_is_never_replaced(tmp_path: Path) -> None:
    src = make_banglalekha(tmp_path / "src", {"12": 2})
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.csv").write_text("image_id,grapheme_root\nmine,1\n")
    (out / "notes.txt").write_text("mine too\n")
    before = _snapshot(out)
    listed = "holds files that no import wrote \\(notes.txt, train.csv\\)"
    with pytest.raises(BengaliaiError, match=f"--out {out} {listed}"):
        import_banglalekha(src, out)
    assert _snapshot(out) == before and _siblings(out) == []
    with pytest.raises(BengaliaiError, match="holds files that no import wrote"):
        import_banglalekha(src, out, force=True)  # --force replaces an import, never someone's files
    assert _snapshot(out) == before


def test_another_import_is_replaced_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    import_folders(COMPOUNDS, make_compounds(tmp_path / "cmp", {str(BARE): 3}), out, max_rows_per_file=1)
    (out / "cache" / "raw").mkdir(parents=True)  # what `prepare` adds to an import
    (out / "cache" / "raw" / "train_image_data_0.npy").write_bytes(b"stale")
    before = _snapshot(out)
    bli = make_banglalekha(tmp_path / "bli", {"12": 2})
    other = "holds an earlier import with another dataset, source, placement settings \\(handwritten compound"
    with pytest.raises(BengaliaiError, match=f"{other}.*; pass --force"):
        import_banglalekha(bli, out)
    assert _snapshot(out) == before
    import_banglalekha(bli, out, force=True)
    names = sorted(p.name for p in out.iterdir())  # the 3 compounds files and the stale cache are gone
    assert names == ["import.json", "sources.csv", "train.csv", "train_image_data_0.parquet"]
    assert json.loads((out / "import.json").read_text(encoding="utf-8"))["dataset"].startswith("BanglaLekha")
    assert _siblings(out) == []


def test_the_same_import_again_replaces_its_earlier_output(tmp_path: Path) -> None:
    src = make_banglalekha(tmp_path / "src", {"12": 2})
    (tmp_path / "out").mkdir()  # an empty folder is written into, kept as the folder it is
    import_banglalekha(src, tmp_path / "out", seed=1)
    before = _snapshot(tmp_path / "out")
    leftover = tmp_path / "out" / ".import-tmp-999999"  # what an import killed by SIGKILL leaves
    leftover.mkdir()
    (leftover / "train.csv").write_text("half\n")
    import_banglalekha(src, tmp_path / "out", seed=1)
    assert _snapshot(tmp_path / "out") == before
    with pytest.raises(BengaliaiError, match="earlier import with another seed"):
        import_banglalekha(src, tmp_path / "out", seed=2)


def test_a_failed_import_leaves_out_as_it_was(tmp_path: Path) -> None:
    src = make_banglalekha(tmp_path / "src", {"12": 3})
    out = tmp_path / "new" / "out"
    bad = next((src / "Images" / "12").iterdir())
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(BengaliaiError, match="not a readable image"):
        import_banglalekha(src, out, max_bad=0)
    assert not out.exists() and _siblings(out) == []  # no train.csv, sources.csv or import.json left behind
    import_banglalekha(src, out)  # the bad image skipped
    before = _snapshot(out)
    with pytest.raises(BengaliaiError, match="not a readable image"):
        import_banglalekha(src, out, max_bad=0)
    assert _snapshot(out) == before and _siblings(out) == []
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no hidden folder of the work in progress


@pytest.mark.parametrize("where", ["file", "under"])
def test_out_that_is_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    src = make_compounds(tmp_path / "src", {str(BARE): 1})
    (tmp_path / "f").write_text("a file\n")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "out"
    assert main(["import", "compounds", "--src", str(src), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    expected = f"--out {out} is a file" if where == "file" else f"--out {out}: {tmp_path / 'f'} is a file"
    assert err.startswith(f"bengaliai import: error: {expected}") and "\n" not in err, err
    assert (tmp_path / "f").read_text() == "a file\n"


def test_cli_force_replaces_another_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_compounds(tmp_path / "src", {str(BARE): 2})
    args = ["import", "compounds", "--src", str(src), "--out", str(tmp_path / "out"), "--workers", "1"]
    assert main(args) == 0
    assert main([*args, "--roots-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the scan's warnings about missing folders
    assert err.startswith("bengaliai import: error: --out") and "pass --force" in err
    assert main([*args, "--roots-only", "--force"]) == 0
    assert "bare roots only" in json.loads((tmp_path / "out" / "import.json").read_text(encoding="utf-8"))["dataset"]


def test_a_failure_moving_into_place_puts_the_earlier_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.csv").write_text("old\n")
    (out / "import.json").write_text("{}\n")
    rename = os.rename

    def full_disk_at_the_manifest(source: str | Path, destination: str | Path) -> None:
        if Path(source).name == "import.json" and Path(source).parent.name.startswith(".import-tmp"):
            raise OSError(28, "No space left on device")
        rename(source, destination)

    monkeypatch.setattr(os, "rename", full_disk_at_the_manifest)
    with pytest.raises(BengaliaiError, match=f"cannot write {out}: moving the finished import into place failed"):
        with staged_folder(out) as stage:
            (stage / "train.csv").write_text("new\n")
            (stage / "import.json").write_text("{\"new\": 1}\n")
    assert sorted(p.name for p in out.iterdir()) == ["import.json", "train.csv"]
    assert (out / "train.csv").read_text() == "old\n" and (out / "import.json").read_text() == "{}\n"
