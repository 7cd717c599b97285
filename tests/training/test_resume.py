"""Resume never destroys what it cannot continue: fold folders are checked before any work, and a resume is exact."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from bengaliai.core.config import load_config
from bengaliai.core.errors import BengaliaiError
from bengaliai.model.checkpoint import load_checkpoint
from bengaliai.training.run_folder import RUN_FILES
from bengaliai.training.train import TrainConfig, train

TRAIN_ELSEWHERE = "train under another --set experiment=NAME"


def _copy_run(tiny_run: Path, tmp_path: Path, *removed: str) -> Path:
    """A copy of tiny_run's experiment in ``tmp_path/runs``, less the ``removed`` (``fold1/last.pt``, ``fold2``)."""
    experiment = tmp_path / "runs" / tiny_run.name
    shutil.copytree(tiny_run, experiment)
    for name in removed:
        path = experiment / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return experiment


def _tiny_settings(tiny_run: Path, tmp_path: Path) -> Path:
    """``tmp_path/tiny.yaml``: the settings tiny_run was trained with (its last.pt's)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    saved = tmp_path / "tiny.yaml"
    saved.write_text(yaml.safe_dump(load_checkpoint(tiny_run / "fold0" / "last.pt")["config"]), encoding="utf-8")
    return saved


def _tiny_config(tiny_run: Path, tmp_path: Path, *overrides: str) -> TrainConfig:
    """tiny_run's settings writing to ``tmp_path/runs``, then ``overrides``."""
    return load_config(TrainConfig, _tiny_settings(tiny_run, tmp_path), [f"output={tmp_path / 'runs'}", *overrides])


def _hashes(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _scores(row: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in row.items() if key != "images_per_s"}


def _refused(config: TrainConfig, folds: str, resume: bool) -> str:
    with pytest.raises(BengaliaiError) as raised:
        train(config, folds=folds, resume=resume)
    message = str(raised.value)
    assert len(message.splitlines()) == 1, message
    return message


@pytest.mark.parametrize(
    "kept", [
        # All but last.pt; then the best checkpoint copied out of a Kaggle run; then single files.
        ("best.pt", "oof.npz", "metrics.csv", "summary.json", "curves.png", "config.yaml", "run.json"),
        ("best.pt", "config.yaml", "run.json"),
        ("metrics.csv",),
        ("oof.npz",),
    ],
)
def test_resume_refuses_a_fold_with_run_files_but_no_last_pt_and_leaves_it_as_it_was(
    tiny_run: Path, tmp_path: Path, kept: tuple[str, ...]
) -> None:
    fold0 = tiny_run / "fold0"
    experiment = _copy_run(tiny_run, tmp_path, *(f"fold0/{p.name}" for p in fold0.iterdir() if p.name not in kept))
    before = _hashes(experiment)
    message = _refused(_tiny_config(tiny_run, tmp_path), "0", resume=True)
    held = ", ".join(name for name in RUN_FILES if name in kept)
    assert message == (
        f"{experiment / 'fold0'} holds {held} but no last.pt (the resume point): --resume cannot continue it and "
        f"would overwrite them; copy its last.pt back, or {TRAIN_ELSEWHERE}"
    )
    assert _hashes(experiment) == before


def test_resume_of_all_folds_is_refused_before_fold_0_trains_when_one_cannot_resume(
    tiny_run: Path, tmp_path: Path
) -> None:
    """With epochs=4 fold 0 would train one more epoch before fold 2's turn: nothing may change anywhere."""
    experiment = _copy_run(tiny_run, tmp_path, "fold2/last.pt", "fold1/last.pt")
    before = _hashes(experiment)
    message = _refused(_tiny_config(tiny_run, tmp_path, "epochs=4"), "all", resume=True)
    assert message.startswith(f"{experiment / 'fold1'} holds best.pt, oof.npz, metrics.csv, summary.json, curves.png; "
                              f"{experiment / 'fold2'} holds best.pt, oof.npz, ")
    assert message.endswith(" but no last.pt (the resume point): --resume cannot continue them and would overwrite "
                            f"them; copy their last.pt back, or {TRAIN_ELSEWHERE}")
    assert _hashes(experiment) == before


@pytest.mark.parametrize(
    ("removed", "folds", "expected"), [
        ((), "0", "{fold0} already holds a run: pass --resume to continue it, or " + TRAIN_ELSEWHERE),
        ((), "all",
         "{fold0}, {fold1}, {fold2} already hold runs: pass --resume to continue them, or " + TRAIN_ELSEWHERE),
        (("fold0/last.pt",), "0", "{fold0} already holds a run (no last.pt to resume from): " + TRAIN_ELSEWHERE
         + ", or move it away to start over"),
        (("fold1/last.pt", "fold2"), "all", "{fold0}, {fold1} already hold runs (no last.pt to resume from in fold1): "
         + TRAIN_ELSEWHERE + ", or move them away to start over"),
    ],
)
def test_without_resume_a_fold_holding_any_run_file_is_refused_and_kept(
    tiny_run: Path, tmp_path: Path, removed: tuple[str, ...], folds: str, expected: str
) -> None:
    experiment = _copy_run(tiny_run, tmp_path, *removed)
    before = _hashes(experiment)
    message = _refused(_tiny_config(tiny_run, tmp_path), folds, resume=False)
    assert message == expected.format(**{f"fold{k}": experiment / f"fold{k}" for k in range(3)})
    assert _hashes(experiment) == before


def test_resume_with_nothing_to_resume_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    config = _tiny_config(tiny_run, tmp_path)
    experiment = tmp_path / "runs" / "tiny"
    assert _refused(config, "1", resume=True) == (
        f"--resume: nothing to resume in {experiment} (no fold1/last.pt); drop --resume to start"
    )
    assert not (tmp_path / "runs").exists()
    # Folds that stopped before their first epoch ended hold only their description: nothing to resume either.
    _copy_run(tiny_run, tmp_path, *(f"fold{k}/{name}" for k in range(3) for name in RUN_FILES))
    before = _hashes(experiment)
    assert _refused(config, "all", resume=True) == (
        f"--resume: nothing to resume in {experiment} (no fold<K>/last.pt for folds 0, 1, 2); drop --resume to start"
    )
    assert _hashes(experiment) == before


def test_resume_of_all_folds_starts_the_folds_without_a_run_fresh(
    tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a session that finished folds 0 and 1, ``--fold all --resume`` goes on with fold 2."""
    experiment = _copy_run(tiny_run, tmp_path, "fold2")
    finished = {k: _hashes(experiment / f"fold{k}") for k in (0, 1)}
    with caplog.at_level("INFO"):
        scores = train(_tiny_config(tiny_run, tmp_path), folds="all", resume=True)
    assert f"fold 2: {experiment / 'fold2'} holds no run to resume: it starts fresh" in caplog.text
    assert scores[0] == load_checkpoint(tiny_run / "fold0" / "last.pt")["best_score"]
    assert {k: _hashes(experiment / f"fold{k}") for k in (0, 1)} == finished
    assert load_checkpoint(experiment / "fold2" / "last.pt")["epoch"] == 2


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("model.arch=resnet18", "model.arch=resnet18 (the run has resnet10)"),
        ("model.base_width=16", "model.base_width=16 (the run has 8)"),
        ("model.aux_graphemes=true", "model.aux_graphemes=true (the run has false)"),
        ("optim.ema_decay=0.9", "optim.ema_decay=0.9 (the run has 0.0)"),
        ("optim.name=sgd", "optim.name=sgd (the run has adamw)"),
    ],
)
def test_resume_after_a_change_of_network_or_optimizer_is_refused_in_one_line(
    tiny_run: Path, tmp_path: Path, setting: str, named: str
) -> None:
    experiment = _copy_run(tiny_run, tmp_path)
    before = _hashes(experiment)
    # epochs=4: the resume would train an epoch, were it allowed.
    message = _refused(_tiny_config(tiny_run, tmp_path, setting, "epochs=4"), "0", resume=True)
    assert message == (
        f"{experiment / 'fold0' / 'last.pt'}: --resume cannot continue this run with {named}: its saved weights and "
        f"optimizer state do not fit; resume with the run's settings, or {TRAIN_ELSEWHERE}"
    )
    assert _hashes(experiment) == before


def test_cli_refuses_a_resume_it_cannot_continue_in_one_line(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bengaliai.cli.main import main

    experiment = _copy_run(tiny_run, tmp_path, "fold0/last.pt")
    config = _tiny_settings(tiny_run, tmp_path)
    code = main(["train", "--config", str(config), "--set", f"output={tmp_path / 'runs'}", "--fold", "0", "--resume"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        f"bengaliai train: error: {experiment / 'fold0'} holds best.pt, oof.npz, metrics.csv, summary.json, curves.png "
        f"but no last.pt (the resume point): --resume cannot continue it and would overwrite them; copy its last.pt "
        f"back, or {TRAIN_ELSEWHERE}"
    )


def test_resume_with_device_augmentation_ends_with_the_same_weights(
    tiny_run: Path, tmp_path: Path, crash_at_batch: Callable[[int], Callable[[], None]]
) -> None:
    """augment.where=device on the CPU: its per-batch generators, the EMA and fp16's GradScaler resume exactly."""
    extra = ("augment.where=device", "augment.distort_p=0.5", "augment.dropout_p=0.5", "augment.cutmix_p=0.5",
             "optim.ema_decay=0.9", "precision=fp16", "threads=1")
    train(_tiny_config(tiny_run, tmp_path / "a", *extra), folds="0")
    reference = load_checkpoint(tmp_path / "a" / "runs" / "tiny" / "fold0" / "last.pt")

    config = _tiny_config(tiny_run, tmp_path / "b", *extra)
    # 10 training and 3 validation batches per epoch: call 30 is batch 3 of epoch 2.
    disarm = crash_at_batch(30)
    with pytest.raises(KeyboardInterrupt):
        train(config, folds="0")
    last = tmp_path / "b" / "runs" / "tiny" / "fold0" / "last.pt"
    assert load_checkpoint(last)["epoch"] == 1
    disarm()
    train(config, folds="0", resume=True)
    resumed = load_checkpoint(last)
    for key in ("model", "ema"):
        assert resumed[key].keys() == reference[key].keys()
        for name, value in reference[key].items():
            assert torch.equal(resumed[key][name], value), (key, name)
    assert [_scores(row) for row in resumed["history"]] == [_scores(row) for row in reference["history"]]
    # What training saves is tensors and plain values: torch reads it without any allow-listed global.
    for name in ("last.pt", "best.pt"):
        assert torch.load(last.parent / name, weights_only=True)["scaler"]["scale"] > 0


def test_a_resume_with_more_epochs_records_them_in_config_yaml(tiny_run: Path, tmp_path: Path) -> None:
    """config.yaml describes what the run trains with, as last.pt does; run.json (its origin) is kept."""
    experiment = _copy_run(tiny_run, tmp_path, "fold1", "fold2")
    origin = (experiment / "fold0" / "run.json").read_bytes()
    train(_tiny_config(tiny_run, tmp_path, "epochs=4"), folds="0", resume=True)
    saved = yaml.safe_load((experiment / "fold0" / "config.yaml").read_text(encoding="utf-8"))
    assert saved["epochs"] == 4 == load_checkpoint(experiment / "fold0" / "last.pt")["config"]["epochs"]
    assert saved["fold"] == 0 and "resolved" in saved and "preprocess" in saved
    assert (experiment / "fold0" / "run.json").read_bytes() == origin
