"""The precision policy: what each kind of hardware gets, and warnings for choices it does badly."""

from __future__ import annotations

import logging

import pytest
import torch

from bengaliai.compute import precision as precision_module
from bengaliai.compute.precision import Precision, grad_scaler, resolve_precision

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.fixture
def card(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Pretend the CUDA device has a given compute capability."""

    def set_capability(major: int, minor: int) -> None:
        monkeypatch.setattr(precision_module, "cuda_capability", lambda device: (major, minor))

    return set_capability


@pytest.fixture
def cpu_with(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Pretend the CPU has the given instruction-set flags."""

    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset(flags))

    return set_flags


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((9, 0), "bf16"), ((8, 0), "bf16"), ((8, 9), "bf16"), ((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 0), "fp32")],
)
def test_auto_on_each_gpu_generation(card, capability: tuple[int, int], expected: str) -> None:  # noqa: ANN001
    card(*capability)
    chosen = resolve_precision("auto", CUDA)
    assert chosen.name == expected
    assert f"{capability[0]}.{capability[1]}" in chosen.reason
    assert chosen.needs_scaler == (expected == "fp16")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(("avx512f", "avx512_bf16"), "bf16"), (("amx_bf16",), "bf16"), (("avx512f", "avx2"), "fp32"), ((), "fp32")],
)
def test_auto_on_cpus_takes_bf16_only_where_it_is_native(cpu_with, flags: tuple[str, ...], expected: str) -> None:  # noqa: ANN001
    cpu_with(*flags)
    assert resolve_precision("auto", CPU).name == expected


def test_auto_elsewhere_is_fp32() -> None:
    assert resolve_precision("auto", torch.device("mps")).name == "fp32"


@pytest.mark.parametrize(
    ("device", "capability", "flags", "asked", "warned"),
    [
        ("cuda", (7, 5), (), "bf16", "no bf16 convolutions"),
        ("cuda", (6, 0), (), "fp16", "no fp16 tensor cores"),
        ("cpu", None, ("avx512f",), "bf16", "emulated"),
        ("cpu", None, ("avx512_bf16",), "fp16", "fp16 on a CPU"),
        ("cuda", (8, 0), (), "fp16", None),
        ("cuda", (9, 0), (), "fp32", None),
        ("cpu", None, ("amx_bf16",), "bf16", None),
    ],
)
def test_an_explicit_choice_is_kept_with_a_warning_where_the_hardware_does_it_badly(
    card, cpu_with, caplog: pytest.LogCaptureFixture, device: str, capability, flags, asked: str, warned: str | None  # noqa: ANN001
) -> None:
    if capability is not None:
        card(*capability)
    cpu_with(*flags)
    with caplog.at_level(logging.WARNING, logger="bengaliai.compute.precision"):
        chosen = resolve_precision(asked, torch.device(device))
    assert chosen.name == asked
    if warned is None:
        assert not caplog.records and chosen.reason == "asked for"
    else:
        assert warned in caplog.text and warned in chosen.reason


def test_dtypes_and_scaler() -> None:
    assert Precision("bf16", "").dtype is torch.bfloat16 and Precision("fp16", "").dtype is torch.float16
    assert Precision("fp32", "").dtype is None and not Precision("fp32", "").autocast
    assert grad_scaler(Precision("bf16", ""), CPU) is None
    scaler = grad_scaler(Precision("fp16", ""), CPU)
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", CPU)


def test_cpu_flags_reads_the_flags_line(tmp_path) -> None:  # noqa: ANN001
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16\n\nprocessor\t: 1\n")
    assert precision_module.cpu_flags.__wrapped__(cpuinfo) == frozenset({"fpu", "avx512f", "amx_bf16"})
    assert precision_module.cpu_flags.__wrapped__(tmp_path / "absent") == frozenset()
