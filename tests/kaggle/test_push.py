"""bengaliai kernel --push: the dataset is uploaded before the kernel (a training kernel alone), failures are one clear message."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bengaliai.core.errors import BengaliaiError
from bengaliai.kaggle.kernel import build_kernel
from bengaliai.kaggle.push import push_kernel, push_train_kernel
from bengaliai.kaggle.train_kernel import build_train_kernel


class FakeApi:
    def __init__(self, exists: bool = False, login: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.exists, self.login = exists, login

    def authenticate(self) -> None:
        if not self.login:
            raise SystemExit(1)

    def dataset_status(self, dataset: str) -> str:
        if not self.exists:
            raise RuntimeError("404")
        return "ready"

    def dataset_create_new(self, folder: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("create", folder))
        return SimpleNamespace(error=None)

    def dataset_create_version(self, folder: str, notes: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("version", folder))
        return SimpleNamespace(error=None)

    def kernels_push(self, folder: str) -> SimpleNamespace:
        self.calls.append(("push", folder))
        return SimpleNamespace(error=None)


def test_push_uploads_the_dataset_then_the_kernel(tiny_run: Path, tmp_path: Path) -> None:
    build = build_kernel(tiny_run, tmp_path / "build", alpha=0, user="someone")
    api = FakeApi()
    push_kernel(build, api_factory=lambda: api)
    assert api.calls == [("create", str(build.dataset_dir)), ("push", str(build.kernel_dir))]
    again = FakeApi(exists=True)
    push_kernel(build, api_factory=lambda: again)
    assert [c for c, _ in again.calls] == ["version", "push"]


def test_push_without_credentials_or_user_is_one_clear_message(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = build_kernel(tiny_run, tmp_path / "build", alpha=0, user="someone")
    with pytest.raises(BengaliaiError, match="Kaggle login failed.*credentials"):
        push_kernel(build, api_factory=lambda: FakeApi(login=False))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    anonymous = build_kernel(tiny_run, tmp_path / "anon", alpha=0)
    with pytest.raises(BengaliaiError, match="--user"):
        push_kernel(anonymous, api_factory=FakeApi)


def test_a_training_kernel_is_pushed_alone(tmp_path: Path) -> None:
    build = build_train_kernel(tmp_path / "train", user="someone")
    api = FakeApi()
    push_train_kernel(build, api_factory=lambda: api)
    assert api.calls == [("push", str(build.kernel_dir))]
    with pytest.raises(BengaliaiError, match="Kaggle login failed"):
        push_train_kernel(build, api_factory=lambda: FakeApi(login=False))
    anonymous = build_train_kernel(tmp_path / "anon", user="your-kaggle-username")
    with pytest.raises(BengaliaiError, match="--user"):
        push_train_kernel(anonymous, api_factory=FakeApi)
