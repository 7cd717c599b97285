"""Argument types and defaults that the ``bengaliai`` subcommands share.

``cli_data``, ``cli_synth`` and ``cli_model`` declare the subcommands with them; ``cli`` puts the parser together.
The type functions keep their leading underscore because argparse names a type function in its
message for a value it cannot convert: "argument --workers: invalid _positive_int value: 'abc'".
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def default_workers() -> int:
    """The default of ``--workers``: the CPUs this process may use, at most 8."""
    from bengaliai.compute.threads import available_cpus  # affinity and cgroup quota, not the host's count

    return max(1, min(available_cpus(), 8))
