"""Device choice: a GPU the installed torch has no code for is caught before any work."""

from __future__ import annotations

import logging

import pytest
import torch

from bengaliai.compute import device as device_module
from bengaliai.compute.device import arch_supported, resolve_device, unsupported_gpu
from bengaliai.core.errors import BengaliaiError

# What a CUDA 12.8 build of torch lists (no sm_60: a P100 cannot run it).
ARCHES = ["sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120", "compute_120"]


@pytest.mark.parametrize(
    ("capability", "arches", "supported"),
    [
        ((6, 0), ARCHES, False),  # P100
        ((7, 5), ARCHES, True),  # T4
        ((8, 9), ARCHES, True),  # L4: sm_86 cubins run on 8.9
        ((9, 0), ["sm_80", "sm_90a"], True),  # arch-specific code runs on its own card
        ((10, 0), ["sm_80", "sm_90a"], False),  # ... and on no other
        ((12, 1), ARCHES, True),  # newer minor of the same major
        ((13, 0), ARCHES, True),  # a newer major: PTX (compute_120) is compiled for it at load time
        ((13, 0), ["sm_90", "sm_120"], False),  # cubins of older majors do not run
        ((8, 0), ["sm_86"], False),  # a cubin never runs on an older minor
    ],
)
def test_arch_support_follows_cuda_binary_compatibility(capability, arches, supported: bool) -> None:  # noqa: ANN001
    assert arch_supported(capability, arches) is supported


def test_the_message_names_the_card_what_torch_supports_and_what_to_do() -> None:
    message = unsupported_gpu("Tesla P100-PCIE-16GB", (6, 0), ARCHES, "2.13.0")
    assert message is not None
    for part in ("Tesla P100-PCIE-16GB", "6.0", "sm_60", "2.13.0", "sm_70, sm_75", "T4", "--device cpu"):
        assert part in message
    assert unsupported_gpu("Tesla T4", (7, 5), ARCHES, "2.13.0") is None
    assert unsupported_gpu("any", (6, 0), [], "2.13.0") is None  # a build that lists nothing is not judged


@pytest.fixture
def p100(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose only GPU is a P100 and whose torch has no sm_60 code."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "Tesla P100-PCIE-16GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (6, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ARCHES)


def test_training_on_an_unsupported_gpu_stops_with_the_message(p100: None) -> None:
    with pytest.raises(BengaliaiError, match="P100.*not supported by the installed torch"):
        resolve_device("auto")


def test_prediction_on_an_unsupported_gpu_falls_back_to_the_cpu_loudly(
    p100: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=device_module.__name__):
        assert resolve_device("cuda", fallback_to_cpu=True) == torch.device("cpu")
    assert "falling back to the CPU" in caplog.text and "sm_60" in caplog.text


def test_a_supported_gpu_and_the_cpu_pass(monkeypatch: pytest.MonkeyPatch, p100: None) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (7, 5))
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_cuda_without_a_gpu_and_a_bad_name_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BengaliaiError, match="sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(BengaliaiError, match="expected cpu, cuda"):
        resolve_device("gpu0")
