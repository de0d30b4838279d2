"""Arguments and handlers of `spatial-memory train` and `spatial-memory bench-model` (argparse only at import)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from ..cli.arg_types import positive_int
from ..core.config import STILL_HEAD_SCALES, ChangeConfig
from .config import TRAIN_SEED_MIN, TrainConfig

_DEFAULTS_OUT = Path("out/spatial_memory_model.pt")  # /out/ is git-ignored


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--out", type=Path, default=_DEFAULTS_OUT,
                   help=f"model file to write (and OUT.state for --resume); default {_DEFAULTS_OUT}")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps (one per chunk of --clip frames)")
    p.add_argument("--batch", type=int, default=d.batch, help="streams trained on in parallel")
    p.add_argument("--clip", type=int, default=d.clip, help="truncated-BPTT chunk, frames")
    p.add_argument("--stream-frames", type=int, default=d.stream_frames, help="frames per training stream")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, cosine decay)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help=f"first training scene seed (>= {TRAIN_SEED_MIN}; 0-199 are tests and the benchmark)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, metavar="N",
                   help="write OUT and OUT.state every N steps")
    p.add_argument("--workers", type=int, default=d.workers, help="scene-rendering processes")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"], help="training device")
    p.add_argument("--time-limit", type=float, default=d.time_limit_min, metavar="MIN",
                   help="save and stop after this many minutes of this session even if --steps are not done "
                   "(--resume goes on for as long again)")
    p.add_argument("--large", action="store_true",
                   help="the larger model for a GPU (with e.g. --batch 32 --steps 6000 --workers 12)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.state")
    p.add_argument("--place-cells", type=int, default=d.place_cells, metavar="G",
                   help="a place memory of G x G floor cells (0 = none, the shipped model; see BENCHMARKS)")
    p.add_argument("--teleports", type=float, default=d.teleports, metavar="SHARE",
                   help="share of training streams whose items vanish and reappear (default 0)")
    p.add_argument("--scene-weight", type=float, default=d.scene_weight, metavar="W",
                   help="extra loss weight of changed pixels off every agent (default 0)")
    p.add_argument("--recolour", type=float, default=d.recolour, metavar="SHARE",
                   help="share of training streams whose agents and palette take random colours (default 0)")
    p.add_argument("--recolour-patrol", type=float, default=d.recolour_patrol, metavar="SHARE",
                   help="that share for patrolling cameras' streams (default: as --recolour)")
    p.add_argument("--decoys", type=float, default=d.decoys, metavar="SHARE",
                   help="share of training streams whose racks and furniture take the agents' colours (default 0)")
    p.add_argument("--floors", type=float, default=d.floors, metavar="SHARE",
                   help="share of training streams whose floor takes a random tint, stains, grain and tiles "
                        "(default 0)")
    p.add_argument("--background", action="store_true",
                   help="a model that also gets the still camera's background picture (model/background.py)")
    p.add_argument("--background-skips-changes", action="store_true",
                   help="with --background: the background leaves out what changed (no ghosts of agents)")
    p.add_argument("--init", type=Path, default=None, metavar="MODEL",
                   help="start from this model file's weights (a place memory it lacks starts fresh)")
    p.add_argument("--anchor", type=float, default=d.anchor, metavar="W",
                   help="with --init: keep the change mask near the init model's where it was trained "
                        "(streams not recoloured, no still background); loss weight, default 0 = off")
    p.add_argument("--edge-weight", type=float, default=d.edge_weight, metavar="W",
                   help="extra loss weight of the unchanged band around each change, on frames with a still "
                        "background (all frames without --background); default 0")
    p.add_argument("--photos", type=float, default=d.photos, metavar="SHARE",
                   help="share of training streams cut from photographs instead of the simulator (still camera, "
                        "real textures; needs Debian's opencv-doc: scripts/setup_venv.sh --data); default 0")
    p.add_argument("--still-head", type=int, default=d.still_head, metavar="C",
                   help="with --background: a still camera's change head of C channels (model/still_head.py); 0 = none")
    p.add_argument("--freeze-base", action="store_true",
                   help="with --still-head and --init: train only the still head, keep the rest as --init has it")
    p.add_argument("--ema", type=float, default=d.ema, metavar="DECAY",
                   help="write the weights' exponential moving average (e.g. 0.99) to OUT instead of the last "
                        "step's; OUT.state keeps the raw ones (default 0 = off)")
    p.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .train import train

    tc = TrainConfig(
        steps=args.steps, batch=args.batch, clip=args.clip, stream_frames=args.stream_frames, lr=args.lr,
        seed=args.seed, checkpoint_every=args.checkpoint_every, workers=args.workers, threads=args.threads,
        device=args.device, time_limit_min=args.time_limit, large=args.large, place_cells=args.place_cells,
        teleports=args.teleports, scene_weight=args.scene_weight, recolour=args.recolour,
        recolour_patrol=args.recolour_patrol, background=args.background,
        background_skips_changes=args.background_skips_changes,
        init=str(args.init) if args.init else "", anchor=args.anchor, edge_weight=args.edge_weight,
        photos=args.photos, decoys=args.decoys, floors=args.floors, still_head=args.still_head,
        freeze_base=args.freeze_base, ema=args.ema,
    )
    try:
        tc.validate()
    except ValueError as e:
        print(f"spatial-memory train: error: {e}", file=sys.stderr)
        return 2
    from ..io.outputs import check_writable

    check_writable(args.out, "--out model file")  # now, not at the first checkpoint, minutes in
    meta = {"command": "spatial-memory " + shlex.join(sys.argv[1:]), "seed": tc.seed}
    summary = train(
        tc, args.out, resume=args.resume, meta=meta,
        progress=lambda it, total, initial: tqdm(it, total=total, initial=initial, desc="train", mininterval=5.0),
    )
    print(json.dumps({"out": str(args.out), **summary}, indent=2))
    return 0


def add_bench_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="checkpoint (default: the shipped one; untrained weights if none)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--width", type=positive_int, default=320, help="camera image width fed to the step (the bench's)")
    p.add_argument("--height", type=positive_int, default=240)
    p.add_argument("--frames", type=positive_int, default=600, help="timed steps for frames/s")
    p.add_argument("--steps", type=positive_int, default=72000,
                   help="steps for the memory-bound run (72,000 = 2 h at 10 Hz)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads")
    p.add_argument("--cameras", type=positive_int, default=1,
                   help="cameras stepped as one batch (update_batch); frames/s then counts all of them")
    p.add_argument("--floor-memory", action="store_true",
                   help="with the floor memory (change.floor_memory, core.floor_change), as the node runs it")
    p.add_argument("--still-camera", action="store_true",
                   help="frames from a still camera (the demo scene) instead of a patrolling one: a model with the "
                        "background input then runs its still-camera parts (background, still head)")
    p.add_argument("--still-head-scale", type=int, choices=STILL_HEAD_SCALES,
                   default=ChangeConfig().still_head_scale, metavar="K",
                   help="change.still_head_scale: the still head reads the frame K times finer (default: the "
                        "pipeline's, %(default)s)")
    p.add_argument("--camera-threads", choices=["shared", "separate"],
                   help="instead: each of --cameras cameras on its own thread, as the node runs them, for --frames "
                        "frames each; shared = one network batching the frames that meet (change.batch_cameras "
                        "always), separate = a network per camera (never). No long run (model/thread_speed.py)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.set_defaults(handler=run_bench_model)


def run_bench_model(args: argparse.Namespace) -> int:
    from ..core.errors import BadInputError
    from .speed import measure

    if args.model is not None and not Path(args.model).is_file():  # not the untrained stand-in: a typo
        raise BadInputError(f"no model checkpoint at {args.model}")
    if args.json is not None:  # before the measurement, which takes minutes
        from ..io.outputs import check_writable

        check_writable(args.json, "--json file")
    if args.camera_threads is not None:
        from .thread_speed import measure_camera_threads

        if args.still_camera or args.threads != 1:
            raise BadInputError("--camera-threads runs the node's setting (one torch thread) on the patrol's "
                                "frames: no --still-camera or --threads")
        threaded = measure_camera_threads(
            args.model, sharing=args.camera_threads, device=args.device, size=(args.width, args.height),
            cameras=args.cameras, timed_frames=args.frames, floor_memory=args.floor_memory,
        )
        text = json.dumps(dataclasses.asdict(threaded), indent=2)
        print(text)
        if args.json:
            args.json.write_text(text + "\n")
        return 0
    result = measure(
        args.model, device=args.device, size=(args.width, args.height), timed_frames=args.frames,
        long_steps=args.steps, threads=args.threads, cameras=args.cameras, floor_memory=args.floor_memory,
        still_camera=args.still_camera, still_scale=args.still_head_scale,
    )
    text = json.dumps(dataclasses.asdict(result), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0

