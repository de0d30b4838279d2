"""What the diagnosis scripts share (scripts/false_boxes.py, scripts/id_breaks.py): one bench scene named on the
command line, held-out seeds refused unless asked for, and a run that shows each frame's tracks as scored."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .runner import BenchConfig, BenchResult, TrackedFrame, run_bench
from .seeds import seed_role


def scene_parser(description: str) -> argparse.ArgumentParser:
    """--preset, --camera, --seed, --minutes, --method, --model and --allow-held-out; add the script's own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--preset", required=True)
    ap.add_argument("--camera", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--method", default="learned")
    ap.add_argument("--model", default="", help="model file; default the shipped one")
    ap.add_argument("--allow-held-out", action="store_true")
    return ap


def parse_scene(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed arguments; exits with a usage error for a held-out seed without --allow-held-out (a diagnosis
    may look at one, but nothing may be tuned on it)."""
    args = ap.parse_args()
    if seed_role(args.seed) == "bench" and not args.allow_held_out:
        ap.error(f"seed {args.seed} is held out: pass --allow-held-out, and tune nothing on it")
    return args


def run_scene(args: argparse.Namespace, watch: Callable[[TrackedFrame], None]) -> BenchResult:
    """The bench on the scene args name, with args.method alone, every frame's tracks shown to watch."""
    config = BenchConfig(preset=args.preset, camera=args.camera, minutes=args.minutes, seed=args.seed,
                         methods=(args.method,), model_path=args.model, jobs=1)
    return run_bench(config, watch=watch)
