"""`spatial-memory bench`: arguments and handler. Imports nothing heavy until a run starts.

Seed policy (bench/seeds.py): the benchmark's held-out seeds are 100-199. A training/tuning seed (>= 1000)
is refused unless --allow-train-seed is given (numbers on it would flatter anything tuned on it); other
seeds run with a warning that the numbers are not benchmark results. --export takes any seed: exporting
training sequences is how another system gets trained.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..cli.arg_types import finite_float, folder, non_negative_int
from ..core.config import STILL_HEAD_SCALES, ChangeConfig
from ..core.errors import BadInputError
from .seeds import BENCH_SEEDS, TRAIN_SEED_MIN, seed_role

# bench.methods.DEFAULT_METHODS, written out: the CLI does not import the methods (OpenCV, the pipeline) to
# print its help; test_bench.py checks the two agree
HELP_DEFAULT_METHODS = "pipeline,mog2,no_memory,last_seen,first_seen,empty_mask"

logger = logging.getLogger(__name__)

PRESETS = ("warehouse", "home", "depot", "depot_orange")  # depot*: a layout no training stream uses
CAMERAS = ("static", "patrol")


def add_scene_arguments(p: argparse.ArgumentParser, *, seed: int = BENCH_SEEDS.start) -> None:
    """--preset, --camera, --minutes, --seed: which bench scene (bench and the scripts that draw from one)."""
    p.add_argument("--preset", choices=PRESETS, default="warehouse", help="scene (default warehouse)")
    p.add_argument("--camera", choices=CAMERAS, default="patrol",
                   help="static mast or patrolling robot (default patrol)")
    p.add_argument("--minutes", type=float, default=10.0, help="simulated minutes at 10 Hz (default 10)")
    p.add_argument("--seed", type=non_negative_int, default=seed,
                   help=f"scene seed (default {seed}); held-out benchmark seeds are {BENCH_SEEDS.start}-"
                        f"{BENCH_SEEDS.stop - 1}")


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    add_scene_arguments(p)
    p.add_argument("--out", type=folder,
                   help="output folder (default bench_out/<preset>_<camera>_<minutes>min_seed<seed>)")
    p.add_argument("--export", type=folder, metavar="DIR",
                   help="instead of a run, write the sequence and its ground truth to DIR (TUM RGB-D layout)")
    p.add_argument("--methods", default=None,
                   help=f"comma-separated subset of the methods (default: {HELP_DEFAULT_METHODS}, the benchmark "
                   "issue's baselines; the learned ones, e.g. learned,learned_no_memory, on request: README 'bench')")
    p.add_argument("--width", type=int, default=None, help="image width px (default 320)")
    p.add_argument("--height", type=int, default=None, help="image height px (default 240)")
    p.add_argument("--query-period", type=float, default=30.0, metavar="S",
                   help="mean simulated seconds between item queries (default 30)")
    p.add_argument("--change-every", type=int, default=1, metavar="N",
                   help="score change masks on every N-th frame (default 1: all)")
    p.add_argument("--jobs", type=int, choices=(1, 2), default=2,
                   help="2: render frames in a second process while the methods run (default); 1: one process")
    p.add_argument("--model", type=Path, default=None, metavar="FILE",
                   help="the learned methods' model file (default: the one shipped in the package)")
    p.add_argument("--still-head-scale", type=int, choices=STILL_HEAD_SCALES,
                   default=ChangeConfig().still_head_scale, metavar="K",
                   help="the learned methods' change.still_head_scale (default: the pipeline's, %(default)s)")
    p.add_argument("--follow-turns", action=argparse.BooleanOptionalAction, default=None,
                   help="change.follow_turns for the methods that use it (pipeline, no_memory, the learned ones; "
                   "default: the package default)")
    p.add_argument("--pose-noise-deg", type=float, default=0.0, metavar="DEG",
                   help="jitter the methods' camera pose by this std about each camera axis, per frame "
                   "(a localiser's error; bench/pose_error.py; default 0: exact)")
    p.add_argument("--pose-noise-m", type=float, default=0.0, metavar="M",
                   help="and by this std along the map's x and y (default 0)")
    p.add_argument("--depth-noise-m", type=finite_float, default=0.0, metavar="M",
                   help="add Gaussian noise to the methods' depth, this std at 1 m, growing with the square of the "
                   "distance (a depth camera's error; bench/depth_error.py; default 0: exact)")
    p.add_argument("--depth-holes", type=finite_float, default=0.0, metavar="SHARE",
                   help="and make this share of its pixels holes with no depth (default 0)")
    p.add_argument("--patrol-speed", type=finite_float, default=0.0, metavar="M/S",
                   help="the patrol camera drives at this speed instead of the preset's (0.8 warehouse, 0.5 home): "
                   "a robot creeping along, e.g. 0.05 (default 0: the preset's)")
    p.add_argument("--patrol-stop", type=finite_float, default=0.0, metavar="S",
                   help="the patrol robot stands S seconds at each corner of its route before it turns "
                   "(default 0: no stop)")
    p.add_argument("--allow-train-seed", action="store_true",
                   help=f"allow a training/tuning seed (>= {TRAIN_SEED_MIN}); its numbers are not benchmark results")
    p.set_defaults(handler=bench_command)


def default_out(preset: str, camera: str, minutes: float, seed: int) -> Path:
    return Path("bench_out") / f"{preset}_{camera}_{minutes:g}min_seed{seed}"


def check_seed(seed: int, *, allow_train_seed: bool) -> None:
    """BadInputError for a training seed without permission; a warning for any other non-benchmark seed."""
    role = seed_role(seed)
    if role == "train" and not allow_train_seed:
        raise BadInputError(
            f"seed {seed} is a training/tuning seed (>= {TRAIN_SEED_MIN}); benchmark seeds are "
            f"{BENCH_SEEDS.start}-{BENCH_SEEDS.stop - 1}. Pass --allow-train-seed to run it anyway."
        )
    if role != "bench":
        logger.warning(
            "seed %d is a %s seed, not a held-out benchmark seed (%d-%d): do not report these numbers",
            seed, role, BENCH_SEEDS.start, BENCH_SEEDS.stop - 1,
        )


def bench_command(args: argparse.Namespace) -> int:
    from .methods import DEFAULT_METHODS
    from .runner import BenchConfig, run_bench
    from .scene import BENCH_HEIGHT, BENCH_WIDTH

    width = args.width if args.width is not None else BENCH_WIDTH
    height = args.height if args.height is not None else BENCH_HEIGHT
    methods = DEFAULT_METHODS if args.methods is None else tuple(m.strip() for m in args.methods.split(",") if m)
    config = BenchConfig(
        preset=args.preset, camera=args.camera, minutes=args.minutes, seed=args.seed, width=width, height=height,
        methods=methods, query_period_s=args.query_period, change_every=args.change_every, jobs=args.jobs,
        model_path=str(args.model) if args.model else "", still_head_scale=args.still_head_scale,
        follow_turns=args.follow_turns, pose_noise_deg=args.pose_noise_deg, pose_noise_m=args.pose_noise_m,
        depth_noise_m=args.depth_noise_m, depth_holes=args.depth_holes,
        patrol_speed=args.patrol_speed, patrol_stop_s=args.patrol_stop,
    ).validate()  # an export too: it skipped these checks (--minutes inf never ended, --width 0 a traceback)
    if args.export is not None:
        ignored = [flag for flag, value in (("--out", args.out), ("--methods", args.methods), ("--model", args.model))
                   if value is not None]
        if ignored:  # they were silently ignored (a missing --model file too)
            raise BadInputError(f"{', '.join(ignored)}: for a benchmark run; --export only writes the scene")
        return _export(args, width, height)
    check_seed(args.seed, allow_train_seed=args.allow_train_seed)
    out = args.out if args.out is not None else default_out(args.preset, args.camera, args.minutes, args.seed)
    if args.out is None and args.patrol_speed > 0:
        out = out.with_name(f"{out.name}_{args.patrol_speed:g}mps")
    if args.out is None and args.patrol_stop > 0:
        out = out.with_name(f"{out.name}_stop{args.patrol_stop:g}s")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)  # now: an unwritable --out is said before the run, not after it
    try:
        result = run_bench(config)  # progress on stderr, also into a log file: a long run shows where it is
    except BaseException:
        if made and not any(out.iterdir()):  # a refused run (a bad --methods, --model) leaves no folder behind
            out.rmdir()
        raise
    from .plots import plot_map, plot_metrics, plot_samples
    from .report import format_summary, write_results
    from .scene import bench_preset

    write_results(result, out / "results.json", {"command": " ".join(["spatial-memory", *sys.argv[1:]])})
    data = result.to_json()
    for stale in ("map.png", "samples.png"):  # drawn only for some method sets: not an earlier run's
        (out / stale).unlink(missing_ok=True)
    plot_metrics(data, out / "metrics.png")
    plot_map(data, bench_preset(args.preset, args.camera, args.minutes, width=width, height=height,
                                patrol_speed=args.patrol_speed, patrol_stop_s=args.patrol_stop), out / "map.png")
    plot_samples(result.samples, out / "samples.png")
    print(format_summary(result))
    written = [f for f in ("results.json", "metrics.png", "map.png", "samples.png") if (out / f).exists()]
    print(f"\nwrote {out}/: {', '.join(written)}")  # no map without a memory method, no samples without change
    return 0


def _export(args: argparse.Namespace, width: int, height: int) -> int:
    from .export import export_sequence
    from .scene import make_bench_scene

    scene = make_bench_scene(args.preset, args.camera, args.minutes, args.seed, width=width, height=height,
                             patrol_speed=args.patrol_speed, patrol_stop_s=args.patrol_stop)
    summary = export_sequence(scene, args.export)
    print(
        f"wrote {summary.frames} frames ({width}x{height}, seed {args.seed}: {seed_role(args.seed)} seed) and "
        f"{summary.gt_boxes} ground-truth boxes (and {summary.dont_care_boxes} don't-care) to {summary.out_dir}/\n"
        f"run the pipeline on it: spatial-memory run {summary.out_dir} --config {summary.out_dir}/params.yaml "
        f"--out OUT"
    )
    return 0
