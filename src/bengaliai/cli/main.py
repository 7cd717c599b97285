"""The ``bengaliai`` command line: one subcommand per pipeline stage.

download|synth -> prepare -> folds -> train -> oof|leaderboard -> predict -> kernel (and, to train on
Kaggle, kernel --train -> pull). Stage modules are imported only when their subcommand runs, so
``--help`` is instant and nothing heavy happens at import. Errors the user can fix end as one message on stderr and exit 2.
The subcommands are declared, each beside the function it runs, in ``cli_data`` (the data
stages), ``cli_synth`` (synth, the data stage with the most options), ``cli_model`` (training
and inference) and ``cli_kaggle`` (training on Kaggle: ``kernel --train``, ``pull``); their shared
option types are in ``cli_options``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from bengaliai import __version__
from bengaliai.cli import data_commands as cli_data
from bengaliai.cli import kaggle_commands as cli_kaggle
from bengaliai.cli import model_commands as cli_model
from bengaliai.cli import synth_commands as cli_synth
from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], None]

# The order of ``bengaliai --help``: the pipeline's, then the extra sources and the demo.
SUBCOMMANDS = (
    cli_synth.add_synth, cli_data.add_prepare, cli_data.add_folds, cli_model.add_train, cli_model.add_oof,
    cli_model.add_leaderboard, cli_model.add_predict, cli_model.add_kernel, cli_kaggle.add_pull, cli_data.add_download,
    cli_data.add_import, cli_model.add_demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; each one's help says what it reads and writes."""
    parser = argparse.ArgumentParser(
        prog="bengaliai",
        description="Bengali.AI Handwritten Grapheme Classification pipeline: "
        "download|synth -> prepare -> folds -> train -> oof|leaderboard -> predict -> kernel.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_subcommand in SUBCOMMANDS:
        add_subcommand(sub)
    return parser


def configure_logging(verbose: bool) -> None:
    """One format for every module's logger; warnings of noisy libraries stay quiet."""
    # Under torchrun only rank 0 tells the story; the other ranks speak up for warnings and errors.
    quiet_rank = int(os.environ.get("RANK", "0")) > 0
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet_rank else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("PIL", "matplotlib", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return the process exit code."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler = args.handler
    try:
        handler(args)
    except BengaliaiError as error:
        print(f"bengaliai {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bengaliai {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
