"""The ``bengaliai synth`` subcommand: its options and the function they run.

Apart from ``data_commands`` because synth has the most options (render settings, handwritten roots,
letterforms, which graphemes) and the checks between them. The synth package is imported only when
the subcommand runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bengaliai.cli.options import _non_negative_int, _positive_int, default_workers
from bengaliai.core.errors import BengaliaiError

if TYPE_CHECKING:
    from bengaliai.cli.options import Subcommands


def _run_synth(args: argparse.Namespace) -> None:
    from bengaliai.core.config import load_config
    from bengaliai.data.folds import held_out_triples
    from bengaliai.synth.dataset import synthesize
    from bengaliai.synth.render import RenderConfig

    config = load_config(RenderConfig, args.config, args.set)
    letterforms = None
    if args.roots_from is not None:
        from bengaliai.synth.letterforms import LetterformConfig

        p = 1.0 if args.letterform_p is None else args.letterform_p
        letterforms = load_config(LetterformConfig, None, [f"p={p}", *args.letterform_set], option="--letterform-set")
    elif args.letterform_p is not None or args.letterform_set:
        given = ["--letterform-p"] * (args.letterform_p is not None) + ["--letterform-set"] * bool(args.letterform_set)
        they, them = ("they", "them") if len(given) > 1 else ("it", "it")
        raise BengaliaiError(
            f"{' and '.join(given)} without --roots-from: nothing is drawn on handwritten roots, so {they} would be "
            f"ignored; add --roots-from IMPORTED_DIR (e.g. from `bengaliai import banglalekha`), or leave {them} out"
        )
    synthesize(
        args.out, n_train=args.train, n_test=args.test, seed=args.seed, workers=args.workers, config=config,
        roots_from=args.roots_from, letterforms=letterforms, signs_from=args.signs_from, id_prefix=args.id_prefix, graphemes=args.graphemes,
        skip=held_out_triples(args.skip_held_out) if args.skip_held_out is not None else frozenset(), force=args.force,
    )


def add_synth(sub: Subcommands) -> None:
    """``bengaliai synth``: render a stand-in dataset in the competition format."""
    p = sub.add_parser(
        "synth",
        help="render a stand-in dataset in the exact competition format",
        description="Render Bengali graphemes with several fonts and handwriting-like distortion into "
        "DIR, exactly as Kaggle ships the competition: train.csv, test.csv, class_map.csv, "
        "sample_submission.csv and {train,test}_image_data_{0..3}.parquet (137x236 uint8, dark ink on "
        "light). Train graphemes follow the real training set (1295 graphemes, near uniform; see --graphemes); the "
        "test split also holds graphemes unseen in train. Also writes test_labels.csv (not part of "
        "the competition files) so that predictions on the synthetic test can be scored, and synth.json "
        "(sizes, seed and the resolved render settings). The same seed and settings give the same bytes "
        "whatever the worker count. An OUT holding competition files that synth did not write (no synth.json), "
        "or a synthetic set of other settings, is refused unless --force; the same settings are written again. "
        "Render settings (fonts, pen_p, stroke_width, elastic_amplitude, ...: "
        "see bengaliai.synth.render.RenderConfig) come from the defaults, then --config, then each --set, e.g. "
        "--set pen_p=0.8 --set 'stroke_width=[3,6]' --set 'fonts=[galada-400.ttf,/path/to/Other.ttf]'.",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    p.add_argument(
        "--force", action="store_true",
        help="replace the competition files in OUT that synth did not write, or a synthetic set of other settings",
    )
    p.add_argument("--train", type=_non_negative_int, default=20_000, help="training images (default: 20000)")
    p.add_argument("--test", type=_non_negative_int, default=2_000, help="test images (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=_positive_int, default=default_workers(), help="rendering processes")
    p.add_argument("--config", type=Path, help="YAML file of render settings")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one render setting (repeatable)"
    )
    p.add_argument(
        "--roots-from", type=Path, action="append", metavar="IMPORTED_DIR",
        help="draw graphemes on the handwritten bare roots of this folder (e.g. from `bengaliai import "
        "banglalekha`): the vowel signs and diacritics of a font are redrawn by pen on a real root; graphemes "
        "whose root has no samples stay font-rendered. Repeat to pool several imported folders, e.g. "
        "BanglaLekha's letters and a compound-character import (their image ids must differ). Prepares "
        "IMPORTED_DIR/cache/raw first if needed",
    )
    p.add_argument(
        "--signs-from", type=Path, action="append", metavar="GRAPHEMES_DIR",
        help="with --roots-from: draw each grapheme's vowel sign and diacritics as a real writer drew them, cut "
        "from this folder's handwritten whole graphemes (e.g. from `bengaliai import bhcc`: its training writers "
        "only) wherever it holds that sign, instead of a font's redrawn by pen; signs it lacks stay a font's. "
        "Repeatable. --letterform-set real_signs_p=P mixes in font signs where real ones exist",
    )
    p.add_argument(
        "--letterform-p", type=float, default=None, metavar="P",
        help="with --roots-from: chance a grapheme is drawn on a real root when its root has one (default: 1)",
    )
    p.add_argument(
        "--letterform-set", action="append", default=[], metavar="KEY=VALUE",
        help="with --roots-from: override one setting of how signs are drawn on real roots (repeatable), e.g. "
        "'sign_gap=[0.4,1.0]' (the gap between a sign and the root, as the font lays it out, times a draw "
        "from this range); see bengaliai.synth.letterforms.LetterformConfig",
    )
    p.add_argument(
        "--id-prefix", default="Train", metavar="PREFIX",
        help="train image ids PREFIX_<i> (default: Train); another prefix, e.g. LF, keeps an extra source's "
        "ids apart from a main synthetic set's",
    )
    p.add_argument(
        "--graphemes", choices=("seen", "unseen", "all"), default="seen",
        help="which graphemes the train split shows: seen = the 1295 of the real training set (default); "
        "unseen = graphemes missing from it, valid under its constraints and shaped as one clean cluster in "
        "every font used (about 1900 with the bundled fonts; see bengaliai.synth.unseen), meant as an extra "
        "training source (with --id-prefix); all = half the images each. synth.json records the choice and "
        "the number of distinct graphemes",
    )
    p.add_argument(
        "--skip-held-out", type=Path, metavar="MAIN_DIR",
        help="leave out the training graphemes that MAIN_DIR's folds file (train_folds.csv from `bengaliai folds "
        "--unseen-graphemes N`) holds out as unseen, so that an extra source drawing seen graphemes "
        "(--graphemes seen|all, --roots-from) keeps them unseen by every fold and their out-of-fold scores honest",
    )
    p.set_defaults(handler=_run_synth)
