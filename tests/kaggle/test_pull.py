"""bengaliai pull: a training kernel's output into runs/, up to the network boundary with a fake Kaggle API."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from bengaliai.cli.main import main
from bengaliai.core.errors import BengaliaiError
from bengaliai.kaggle.pull import pull_output

KERNEL = "someone/bengaliai-tiny-train"
CONFIG = "experiment: tiny\nfolds_file: train_folds.csv\ndata:\n  input: input\n"


@pytest.fixture(autouse=True)
def _no_network(no_network: None) -> None:
    """Every test here runs with the network refused (conftest.no_network)."""


def kernel_output(best: bytes = b"weights", folds: bytes = b"image_id,fold,unseen\n", epochs_done: int | None = None,
                  started: str = "10:00") -> dict[str, bytes]:
    fold = "runs/tiny/fold0/"
    files = {fold + "best.pt": best, fold + "last.pt": b"state", fold + "config.yaml": CONFIG.encode(),
             "train_folds.csv": folds}
    if epochs_done is not None:  # a run as train writes it: run.json when it starts, summary.json each epoch
        files |= {fold + "run.json": f'{{"started": "{started}"}}'.encode(),
                  fold + "summary.json": f'{{"epochs_done": {epochs_done}}}'.encode()}
    return files


class FakeApi:
    """Stands in for KaggleApi: the status of the kernel's latest version, and its output written where asked."""

    def __init__(self, files: dict[str, bytes] | None = None, status: str = "COMPLETE", error: BaseException | None = None) -> None:
        self.files = kernel_output() if files is None else files
        self.status, self.error = status, error
        self.calls: list[str] = []

    def authenticate(self) -> None:
        self.calls.append("authenticate")

    def kernels_status(self, kernel: str) -> SimpleNamespace:
        self.calls.append(f"status {kernel}")
        if self.error is not None:
            raise self.error
        return SimpleNamespace(status=SimpleNamespace(name=self.status), failure_message="out of time")

    def kernels_output(self, kernel: str, path: str, force: bool = False, quiet: bool = True) -> tuple[list[str], None]:
        self.calls.append(f"output {kernel}")
        for name, data in {**self.files, f"{kernel.split('/')[1]}.log": b"log"}.items():
            (Path(path) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(path) / name).write_bytes(data)
        return list(self.files), None


def _input(tmp_path: Path) -> Path:
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "train.csv").write_text("image_id\n", encoding="utf-8")
    return tmp_path / "input"


def test_pull_brings_the_runs_and_puts_the_folds_file_where_the_runs_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _input(tmp_path)
    api = FakeApi()
    result = pull_output(KERNEL, Path("runs"), api_factory=lambda: api)
    fold = tmp_path / "runs" / "tiny" / "fold0"
    assert (fold / "best.pt").read_bytes() == b"weights" and (fold / "config.yaml").read_text() == CONFIG
    assert (tmp_path / "runs" / "tiny" / "train_folds.csv").read_bytes() == b"image_id,fold,unseen\n"
    assert (tmp_path / "input" / "train_folds.csv").read_bytes() == b"image_id,fold,unseen\n"  # data.input/folds_file
    assert (tmp_path / "runs" / "tiny" / "bengaliai-tiny-train.log").read_text() == "log"
    assert result.written == (Path("runs/tiny/fold0"),) and "bengaliai oof --run runs/tiny" in result.summary()
    assert api.calls == ["authenticate", f"status {KERNEL}", f"output {KERNEL}"]
    again = pull_output(KERNEL, Path("runs"), api_factory=FakeApi)
    assert again.written == () and again.unchanged == (Path("runs/tiny/fold0"),)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny"]  # no staging folder left behind


def test_a_fold_folder_with_other_content_is_refused_unless_forced(tmp_path: Path) -> None:
    input_dir = _input(tmp_path)
    pull_output(KERNEL, tmp_path / "runs", input_dir=input_dir, api_factory=FakeApi)
    newer = FakeApi(kernel_output(best=b"better weights"))
    with pytest.raises(BengaliaiError, match=r"fold0 already holds other content than someone/bengaliai-tiny-train's output: "
                                             r"nothing was written; pass --force to replace it"):
        pull_output(KERNEL, tmp_path / "runs", input_dir=input_dir, api_factory=lambda: newer)
    assert (tmp_path / "runs" / "tiny" / "fold0" / "best.pt").read_bytes() == b"weights"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny"]
    (tmp_path / "runs" / "tiny" / "fold0" / "stale.txt").write_text("x", encoding="utf-8")
    pull_output(KERNEL, tmp_path / "runs", input_dir=input_dir, force=True, api_factory=lambda: newer)
    assert sorted(p.name for p in (tmp_path / "runs" / "tiny" / "fold0").iterdir()) == ["best.pt", "config.yaml", "last.pt"]
    assert (tmp_path / "runs" / "tiny" / "fold0" / "best.pt").read_bytes() == b"better weights"


def test_a_later_version_that_resumed_a_fold_updates_it_an_earlier_one_is_refused(tmp_path: Path) -> None:
    input_dir = _input(tmp_path)
    first = FakeApi(kernel_output(epochs_done=1))
    pull_output(KERNEL, tmp_path / "runs", input_dir=input_dir, api_factory=lambda: first)
    resumed = FakeApi(kernel_output(best=b"better", epochs_done=2))
    assert pull_output(KERNEL, tmp_path / "runs", input_dir=input_dir, api_factory=lambda: resumed).written
    assert (tmp_path / "runs" / "tiny" / "fold0" / "best.pt").read_bytes() == b"better"
    for older in (kernel_output(epochs_done=1), kernel_output(epochs_done=3, started="11:00")):  # behind; another run
        with pytest.raises(BengaliaiError, match="fold0 already holds other content"):
            pull_output(KERNEL, tmp_path / "runs", input_dir=input_dir, api_factory=lambda files=older: FakeApi(files))
    assert (tmp_path / "runs" / "tiny" / "fold0" / "best.pt").read_bytes() == b"better"


def test_local_folds_that_differ_are_kept_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    input_dir = _input(tmp_path)
    (input_dir / "train_folds.csv").write_text("mine\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        pull_output(KERNEL, tmp_path / "runs", input_dir=input_dir, api_factory=FakeApi)
    assert (input_dir / "train_folds.csv").read_text() == "mine\n"
    assert "differs from the folds file the kernel trained with" in caplog.text


@pytest.mark.parametrize(
    ("api", "message"),
    [
        (FakeApi(status="RUNNING"), "someone/bengaliai-tiny-train is running on Kaggle: pull it once the version has finished"),
        (FakeApi(files={"submission.csv": b""}), r"holds no runs/<experiment>/fold<K> \(it holds: .*\.log, submission.csv\)"),
        (FakeApi(error=requests.HTTPError(response=SimpleNamespace(status_code=404))),
         r"Kaggle has no kernel someone/bengaliai-tiny-train that these credentials may read \(HTTP 404\)"),
        (FakeApi(error=ConnectionError("reset")), r"asking Kaggle for the status of .* failed \(ConnectionError: reset\)"),
    ],
)
def test_failures_are_one_clear_message_and_write_nothing(api: FakeApi, message: str, tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match=message):
        pull_output(KERNEL, tmp_path / "runs", api_factory=lambda: api)
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_failed_version_is_pulled_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        pull_output(KERNEL, tmp_path / "runs", input_dir=_input(tmp_path), api_factory=lambda: FakeApi(status="ERROR"))
    assert "latest version ended as error (out of time)" in caplog.text
    assert (tmp_path / "runs" / "tiny" / "fold0" / "last.pt").is_file()


def test_a_malformed_slug_is_refused_before_kaggle_is_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeApi()
    with pytest.raises(BengaliaiError, match="expected OWNER/SLUG"):
        pull_output("someone/abc", tmp_path / "runs", api_factory=lambda: api)
    assert api.calls == [] and not (tmp_path / "runs").exists()
    assert main(["pull", "https://www.kaggle.com/code/someone/x", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bengaliai pull: error: kernel 'https://www.kaggle.com/code/someone/x': expected OWNER/SLUG")
    assert err.count("\n") == 1


def test_pull_help_explains_each_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["pull", "--help"])
    out = capsys.readouterr().out
    assert all(option in out for option in ("KERNEL", "--out", "--input", "--force")) and "OWNER/SLUG" in out
