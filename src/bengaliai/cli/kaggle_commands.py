"""Training on Kaggle from the command line: ``kernel --train`` (its options) and ``pull`` (its output brought home).

``model_commands.add_kernel`` adds the options here to ``bengaliai kernel``, which builds an inference
kernel by default and a training kernel with ``--train``; ``check_kernel_options`` refuses options of
one kind given to the other. ``pull`` downloads what a training kernel wrote into runs/.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bengaliai.cli.options import _non_negative_int, _positive_float, _positive_int
from bengaliai.core.errors import BengaliaiError

if TYPE_CHECKING:
    from bengaliai.cli.options import Subcommands

# The options (argparse dests) of each kind of kernel; each kind refuses the other's.
TRAIN_OPTIONS = (
    "config", "set", "fold", "n_splits", "folds_seed", "unseen_graphemes", "resume_from", "hours", "pretrained",
)
INFERENCE_OPTIONS = ("run", "folds", "tta", "alpha", "routing", "batch_size", "precision", "device")


def add_train_kernel_options(p: argparse.ArgumentParser) -> None:
    """The options of ``bengaliai kernel --train``; call after every other option of ``kernel``."""
    group = p.add_argument_group(
        "training kernel (--train)",
        "A kernel that trains on Kaggle: it prepares the competition's training images and makes the folds in a "
        "scratch folder (the read-only /kaggle/input is never written), trains the folds on every GPU (torchrun, one "
        "process per GPU) and leaves runs/<experiment>/fold<K>/ and train_folds.csv in /kaggle/working, its output. "
        "The runs record data.input 'input' and folds_file 'train_folds.csv', the local layout, so pulled runs work "
        "at home beside the same folds. Kaggle's 'GPU T4 x2', internet off, this package (and iterative-stratification) "
        "inside train.py: nothing to install.",
    )
    group.add_argument("--train", action="store_true", help="build a training kernel instead of an inference kernel")
    group.add_argument("--config", type=Path, default=None, metavar="YAML", help="experiment YAML, as for bengaliai train (default: the defaults in code)")
    group.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting (repeatable), as for bengaliai train; the kernel sets data.input, data.cache_dir, "
        "folds_file and output itself, and refuses data.extra and model.pretrained (files on this machine; see --pretrained)",
    )
    group.add_argument("--fold", default="0", metavar="FOLDS", help="folds to train: a number, a comma list such as 0,2, or 'all' (default: 0)")
    group.add_argument("--n-splits", type=_positive_int, default=5, metavar="K", help="folds the kernel makes, as bengaliai folds --n-splits (default: 5)")
    group.add_argument("--folds-seed", type=int, default=0, metavar="SEED", help="their seed, as bengaliai folds --seed (default: 0)")
    group.add_argument(
        "--unseen-graphemes", type=_non_negative_int, default=0, metavar="N",
        help="graphemes held out of all training splits, as bengaliai folds --unseen-graphemes (default: 0); make the "
        "local folds with the same three options to score pulled runs at home",
    )
    group.add_argument(
        "--resume-from", default=None, metavar="OWNER/SLUG",
        help="attach that kernel's output, usually this kernel's own id (the build prints it), and resume from it: "
        "its fold folders and folds file are copied in, unfinished folds go on from last.pt, finished ones train no further",
    )
    group.add_argument(
        "--pretrained", default=None, metavar="OWNER/DATASET/FILE",
        help="start the folds from ImageNet weights (model.pretrained): attach that Kaggle dataset, which holds FILE, a "
        "timm or torchvision checkpoint of the model (e.g. someone/timm-weights/seresnext26d_32x4d.pth); the kernel "
        "finds FILE under /kaggle/input",
    )
    group.add_argument(
        "--hours", type=_positive_float, default=None, metavar="H",
        help="time budget on Kaggle: training stops this long after the start, keeping every finished epoch "
        "(default: 11.5, as Kaggle ends a session at 12 h)",
    )
    p.set_defaults(kernel_defaults={dest: p.get_default(dest) for dest in (*TRAIN_OPTIONS, *INFERENCE_OPTIONS)})


def check_kernel_options(args: argparse.Namespace) -> None:
    """Refuse options of the other kind of kernel than the one asked for, and an inference kernel without --run."""

    def given(dests: tuple[str, ...]) -> str:
        return ", ".join("--" + d.replace("_", "-") for d in dests if getattr(args, d) != args.kernel_defaults[d])

    if args.train:
        if given(INFERENCE_OPTIONS):
            raise BengaliaiError(f"{given(INFERENCE_OPTIONS)}: options of an inference kernel; --train trains from --config")
        return
    if given(TRAIN_OPTIONS):
        raise BengaliaiError(f"{given(TRAIN_OPTIONS)}: options of a training kernel; add --train")
    if args.run is None:
        raise BengaliaiError("--run runs/<experiment> is required (or --train, to build a training kernel)")


def run_train_kernel(args: argparse.Namespace) -> None:
    """``bengaliai kernel --train``: build the training kernel and push it with ``--push``."""
    from bengaliai.kaggle.push import push_train_kernel
    from bengaliai.kaggle.train_kernel import FoldsRecipe, build_train_kernel

    build = build_train_kernel(
        args.out, config_path=args.config, overrides=args.set, folds=args.fold,
        recipe=FoldsRecipe(args.n_splits, args.folds_seed, args.unseen_graphemes), user=args.user,
        machine_shape=args.machine_shape, resume_from=args.resume_from, hours=args.hours, pretrained=args.pretrained,
    )
    print(build.summary())
    if args.push:
        push_train_kernel(build)


def _run_pull(args: argparse.Namespace) -> None:
    from bengaliai.kaggle.pull import pull_output

    print(pull_output(args.kernel, args.out, input_dir=args.input, force=args.force).summary())


def add_pull(sub: Subcommands) -> None:
    """``bengaliai pull``: a training kernel's output into runs/."""
    p = sub.add_parser(
        "pull",
        help="download a training kernel's output (runs/<experiment>) into runs/",
        description="Download the output of a Kaggle kernel built by `bengaliai kernel --train` (runs/<experiment>/"
        "fold<K>/ and train_folds.csv) with the kaggle package (credentials as for bengaliai download) into OUT, all of "
        "it or nothing, so that oof, leaderboard, predict and kernel take the runs as local ones. A fold folder already "
        "in OUT is left as it is when identical and updated when the output holds the same run trained further (a later "
        "version that resumed it); one with other content is refused unless --force. The folds file is kept "
        "as OUT/<experiment>/train_folds.csv and, where the input folder has none, written beside its train.csv; one "
        "that differs there is left alone, with a warning. A kernel whose latest version is still running is refused.",
    )
    p.add_argument("kernel", metavar="KERNEL", help="the kernel as OWNER/SLUG, as in kaggle.com/code/OWNER/SLUG")
    p.add_argument("--out", type=Path, default=Path("runs"), help="folder of experiments (default: runs)")
    p.add_argument(
        "--input", type=Path, default=None,
        help="local folder with the competition's train.csv, where the folds file goes (default: the runs' data.input, input)",
    )
    p.add_argument(
        "--force", action="store_true",
        help="replace fold folders in OUT whose content differs from the kernel's (another run, or one trained further here)",
    )
    p.set_defaults(handler=_run_pull)
