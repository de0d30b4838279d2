"""`spatial-memory train-tag-reader`: train the learned tag reader (model.tag_reader) on training scenes.

Renders the benchmark's scene views on training seeds only, trains on all but the last --val-scenes seeds,
and prints how many undecoded item quads those held-back scenes get read right and wrong, and how many
other quads are read as an item, per margin: what detector.tag_reader_min_margin trades.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..model.tag_reader import DEFAULT_WEIGHTS

    p.add_argument("--seeds", default="1010-1021", metavar="FIRST-LAST",
                   help="training scene seeds, inclusive (>= 1000; default 1010-1021); scene kinds cycle "
                   "warehouse static, home static, then warehouse and home patrol twice")
    p.add_argument("--minutes", type=float, default=10.0, help="simulated minutes per scene (default 10)")
    p.add_argument("--val-scenes", type=int, default=2, help="last seeds held back to report on (default 2)")
    p.add_argument("--epochs", type=int, default=8, help="passes over the training quads (default 8)")
    p.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS,
                   help="weights to write (default: the ones shipped in the package)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..io.outputs import check_writable
    from ..model.tag_reader_train import run as train
    from .fit_prior import parse_seeds

    check_writable(args.out, "--out weights file")  # now, not after minutes of scenes and training
    report = train(args.out, list(parse_seeds(args.seeds)), minutes=args.minutes, val_scenes=args.val_scenes,
                   epochs=args.epochs, progress=not args.no_progress)
    print(json.dumps(report, indent=2))
    return 0
