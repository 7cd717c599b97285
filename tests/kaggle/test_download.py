"""download: up to the network boundary, with a fake Kaggle API; the real network is never used."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from bengaliai.core.errors import BengaliaiError
from bengaliai.kaggle.download import EXPECTED_FILES, download, kaggle_api


@pytest.fixture(autouse=True)
def _no_network(no_network: None) -> None:
    """Every test here runs with the network refused (conftest.no_network)."""


def competition_files() -> dict[str, bytes]:
    return {name: f"content of {name}\n".encode() for name in EXPECTED_FILES}


class FakeApi:
    """Stands in for KaggleApi: authenticate, then write a zip where Kaggle would."""

    def __init__(self, members: dict[str, bytes] | None = None, error: BaseException | None = None,
                 auth_error: BaseException | None = None, payload: bytes | None = None) -> None:
        self.members = competition_files() if members is None else members
        self.error = error
        self.auth_error = auth_error
        self.payload = payload
        self.calls: list[tuple[str, str, bool]] = []

    def authenticate(self) -> None:
        if self.auth_error is not None:
            raise self.auth_error

    def competition_download_files(self, competition: str, path: str | None = None, force: bool = False,
                                   quiet: bool = True) -> None:
        self.calls.append((competition, str(path), quiet))
        if self.error is not None:
            raise self.error
        archive = Path(path) / f"{competition}.zip"
        if self.payload is not None:
            archive.write_bytes(self.payload)
            return
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data in self.members.items():
                zf.writestr(name, data)


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Client Error", response=response)


def test_downloads_extracts_and_removes_the_archive(tmp_path: Path) -> None:
    api = FakeApi()
    out = tmp_path / "input"
    download(out, api_factory=lambda: api)
    assert api.calls == [("bengaliai-cv19", api.calls[0][1], False)]
    # Only the competition files remain: no archive, no hidden staging folder.
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED_FILES)
    for name, data in competition_files().items():
        assert (out / name).read_bytes() == data


def test_skips_when_all_files_are_there_unless_forced(tmp_path: Path) -> None:
    for name in EXPECTED_FILES:
        (tmp_path / name).write_text("old", encoding="utf-8")

    def no_api() -> Any:
        raise AssertionError("must not contact Kaggle")

    download(tmp_path, api_factory=no_api)
    assert (tmp_path / "train.csv").read_text(encoding="utf-8") == "old"
    download(tmp_path, force=True, api_factory=FakeApi)
    assert (tmp_path / "train.csv").read_bytes() == competition_files()["train.csv"]


def test_missing_file_in_archive_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    members = competition_files()
    del members["test_image_data_2.parquet"], members["class_map.csv"]
    out = tmp_path / "input"
    with pytest.raises(BengaliaiError, match="lacks 2 expected file.*class_map.csv, test_image_data_2.parquet"):
        download(out, api_factory=lambda: FakeApi(members))
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("member", "reason"),
    [("../evil.txt", "a path with '..'"), ("/tmp/evil.txt", "an absolute path"), ("a/../../evil.txt", "a path with '..'")],
)
def test_archive_with_escaping_member_is_refused(tmp_path: Path, member: str, reason: str) -> None:
    members = {**competition_files(), member: b"evil"}
    out = tmp_path / "input"
    with pytest.raises(BengaliaiError, match=f"member '{member}' is {reason}"):
        download(out, api_factory=lambda: FakeApi(members))
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_broken_archive_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match="not a readable zip archive"):
        download(tmp_path / "input", api_factory=lambda: FakeApi(payload=b"<html>not a zip</html>"))
    assert list((tmp_path / "input").iterdir()) == []


@pytest.mark.parametrize("status", [401, 403])
def test_refused_download_says_to_accept_the_rules(tmp_path: Path, status: int) -> None:
    with pytest.raises(BengaliaiError) as info:
        download(tmp_path / "input", api_factory=lambda: FakeApi(error=http_error(status)))
    message = str(info.value)
    assert f"HTTP {status}" in message and "competitions/bengaliai-cv19/rules" in message
    assert "KAGGLE_API_TOKEN" in message
    assert list((tmp_path / "input").iterdir()) == []


def test_network_failure_is_one_clear_error(tmp_path: Path) -> None:
    error = requests.ConnectionError("Max retries exceeded with url: /api/v1/competitions")
    with pytest.raises(BengaliaiError, match="downloading bengaliai-cv19 from Kaggle failed.*ConnectionError.*network"):
        download(tmp_path / "input", api_factory=lambda: FakeApi(error=error))


def test_failed_login_of_the_api_is_a_credentials_error(tmp_path: Path) -> None:
    with pytest.raises(BengaliaiError, match="Kaggle login failed \\(no usable credentials found\\).*KAGGLE_API_TOKEN"):
        download(tmp_path / "input", api_factory=lambda: FakeApi(auth_error=SystemExit(1)))
    assert not (tmp_path / "input").exists()


def test_real_kaggle_package_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for key in [key for key in os.environ if key.startswith("KAGGLE_")]:
        monkeypatch.delenv(key)

    def real_api() -> Any:
        api = kaggle_api()
        # KaggleApi fixes the path of kaggle.json when first imported, perhaps under another HOME.
        api.config = str(home / ".kaggle" / "kaggle.json")
        return api

    out = tmp_path / "input"
    with pytest.raises(BengaliaiError) as info:
        download(out, api_factory=real_api)
    message = str(info.value)
    for hint in ("KAGGLE_API_TOKEN", "~/.kaggle/access_token", "kaggle.json", "KAGGLE_USERNAME", "rules"):
        assert hint in message
    assert capsys.readouterr().out == ""
    assert not out.exists()


def test_missing_six_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Import kaggle afresh with `six` unavailable, then put the original modules back.
    saved = {name: module for name, module in sys.modules.items() if name == "kaggle" or name.startswith("kaggle.")}
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "six", None)
    try:
        with pytest.raises(BengaliaiError, match="needs `six`.*pip install six"):
            download(tmp_path / "input")
    finally:
        for name in [name for name in sys.modules if name == "kaggle" or name.startswith("kaggle.")]:
            del sys.modules[name]
