"""The command line: every subcommand explains itself, errors end as one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bengaliai.cli import main as cli
from bengaliai.cli.main import main

from builders import fake_run

SUBCOMMANDS = ("synth", "prepare", "folds", "train", "download", "demo")


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: bengaliai {command}" in out
    assert len(out) > 400, "help should explain what the command reads and writes"


def test_top_level_help_lists_the_stages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert command in out


def test_user_errors_are_one_line_on_stderr_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["folds", "--input", str(tmp_path / "nowhere")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("bengaliai folds: error: ")
    assert "nowhere" in captured.err
    assert "Traceback" not in captured.err


def test_bad_option_values_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["synth", "--out", "x", "--workers", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bengaliai", "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("bengaliai ")


def test_synth_takes_render_settings_and_records_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    out = tmp_path / "data"
    args = ["synth", "--out", str(out), "--train", "3", "--test", "0", "--workers", "1"]
    assert cli.main([*args, "--set", "pen_p=0", "--set", "stroke_width=[4, 5]", "--set", "fonts=[mina-400.ttf]"]) == 0
    render = json.loads((out / "synth.json").read_text(encoding="utf-8"))["render"]
    assert render["pen_p"] == 0.0 and render["stroke_width"] == [4.0, 5.0] and render["fonts"] == ["mina-400.ttf"]
    capsys.readouterr()
    for bad, message in [
        ("pen_width=3", "unknown key 'pen_width'"),
        ("pen_p=1.5", "pen_p is a probability"),
        ("stroke_width=[6, 3]", "stroke_width is a (low, high) range"),
        ("fonts=[no-such-font.ttf]", "font 'no-such-font.ttf': cannot open"),
    ]:
        assert cli.main([*args, "--out", str(tmp_path / "bad"), "--set", bad]) == 2
        assert message in capsys.readouterr().err, bad
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("where", ["file", "proc"])
@pytest.mark.parametrize("command", ["predict", "kernel"])
def test_an_unwritable_output_fails_before_any_checkpoint_is_read(
    tmp_path: Path, where: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's only checkpoint is an empty file, so reading it would fail with another error."""
    # Tests run as root, where a read-only chmod does not stop writes: a parent that is a file and /proc do.
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out" if where == "file" else Path("/proc/bengaliai-test")
    extra = ["--user", "u"] if command == "kernel" else []
    assert main([command, "--run", str(fake_run(tmp_path)), "--alpha", "0", "--out", str(out), *extra]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error" in line.lower()]
    written = out / "dataset" / "inference.json" if command == "kernel" else out
    assert len(error) == 1 and error[0].startswith(f"bengaliai {command}: error: cannot write {written}: ")


def _one_error_line(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith(f"bengaliai {command}: error: "), err
    return lines[0].removeprefix(f"bengaliai {command}: error: ")


def test_synth_option_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    args = ["synth", "--out", str(out), "--train", "2", "--test", "0", "--workers", "1"]
    roots = ["--roots-from", str(tmp_path / "imported")]  # the settings are read before the folder
    for extra, expected in [
        (["--set", "pen_p=[0.1,"], "--set 'pen_p=[0.1,': the value [0.1, is not valid YAML (column 6: "),
        ([*roots, "--letterform-set", "sign_gap=[0.1,"], "--letterform-set 'sign_gap=[0.1,': the value [0.1, is not valid YAML"),
        ([*roots, "--letterform-set", "gap=1"], "--letterform-set gap=1: unknown key 'gap'"),
        ([*roots, "--letterform-set", "sign_gap"], "--letterform-set 'sign_gap': expected key=value"),
        (["--letterform-p", "0.5"], "--letterform-p without --roots-from: nothing is drawn on handwritten roots, so it"),
        (["--letterform-set", "sign_gap=[0.2,0.6]"], "--letterform-set without --roots-from: nothing is drawn on"),
        (["--letterform-p", "1", "--letterform-set", "p=1"], "--letterform-p and --letterform-set without --roots-from"),
        (["--train", "0"], "no images to render: n_train and n_test are both 0"),
    ]:
        assert main([*args, *extra]) == 2, extra
        assert _one_error_line(capsys, "synth").startswith(expected), extra
    assert not out.exists()


def test_an_out_that_is_a_file_or_below_one_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    run = str(fake_run(tmp_path))
    synth = ["synth", "--train", "1", "--test", "0", "--workers", "1", "--out"]
    for argv, expected in [
        ([*synth, str(blocker)], f"cannot write to {blocker}: it is a file, not a folder"),
        ([*synth, str(blocker / "sub")], f"cannot write to {blocker / 'sub'}: {blocker} is a file, not a folder"),
        (["demo", "--workdir", str(blocker)], f"cannot write to {blocker / 'demo' / 'input'}: {blocker} is a file"),
        (["download", "--out", str(blocker)], f"cannot write to {blocker}: it is a file, not a folder"),
        (["folds", "--input", str(tmp_path), "--out", str(folder)], f"cannot write {folder}: it is a folder"),
        (["folds", "--input", str(tmp_path), "--out", str(blocker / "f.csv")], f"cannot write {blocker / 'f.csv'}: {blocker}"),
        (["predict", "--run", run, "--alpha", "0", "--out", str(folder)], f"cannot write {folder}: it is a folder"),
        (["kernel", "--run", run, "--alpha", "0", "--user", "u", "--out", str(blocker)], f"cannot write {blocker / 'dataset'}"),
    ]:
        assert main(argv) == 2, argv
        assert _one_error_line(capsys, argv[0]).startswith(expected), argv
    assert blocker.read_text() == "x" and list(folder.iterdir()) == []


def test_synth_refuses_data_it_did_not_write_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "input"
    out.mkdir()
    (out / "train.csv").write_text("image_id,grapheme_root,vowel_diacritic,consonant_diacritic,grapheme\n")
    args = ["synth", "--out", str(out), "--train", "1", "--test", "0", "--workers", "1"]
    assert main(args) == 2
    assert _one_error_line(capsys, "synth") == (
        f"{out} already holds competition files that `bengaliai synth` did not write (train.csv; no synth.json): "
        "pass --force to replace them, or choose another --out"
    )
    assert main([*args, "--force"]) == 0
    assert (out / "synth.json").exists()
    assert main([*args, "--seed", "1"]) == 2
    assert "other settings (seed 0 -> 1)" in _one_error_line(capsys, "synth")
