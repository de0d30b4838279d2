"""`spatial-memory`: the demo, offline runs on recordings, and queries of a saved memory. No ROS needed.

Each subcommand is an ``_add_<name>`` function that declares its arguments and sets ``handler``; the
handlers import what they need lazily, so a quick ``locate`` never loads the pipeline and its models.
Expected failures (SpatialMemoryError, missing or unwritable files) print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from ..core.config import PipelineConfig
from ..core.errors import SpatialMemoryError
from .arg_types import finite_float, folder, non_negative_int, positive_float, positive_int
from .stopping import EXIT_INTERRUPTED, sigterm_as_ctrl_c

PROG = "spatial-memory"
EXIT_ERROR = 2  # as argparse uses for usage errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    _add_run(sub)
    _add_locate(sub)
    _add_list(sub)
    _add_evaluate(sub)
    _add_bench(sub)
    _add_train(sub)
    _add_bench_model(sub)
    _add_bench_node(sub)
    _add_fit_return_prior(sub)
    _add_train_tag_reader(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the process exit code (0 ok, 2 error, 130 interrupted: Ctrl-C or SIGTERM)."""
    with sigterm_as_ctrl_c():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        parser = build_parser()  # imports torch and the subcommands: a second or more, long enough for a Ctrl-C
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help or a usage error: argparse has already printed why
        return e.code if isinstance(e.code, int) else EXIT_ERROR
    try:
        return int(args.handler(args))
    except BrokenPipeError:  # `locate --json | head`: the reader left, which is not an error of ours
        _silence_stdout()
        return 0
    except (SpatialMemoryError, OSError) as e:  # OSError: a missing input, an unwritable --out, ...
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# ---- demo ------------------------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="simulate a scene and write the outputs of `run` (its memory stays in RAM: no "
                       "memory.db), a contact sheet and demo.avi")
    p.add_argument("--out", type=folder, default=Path("spatial_memory_demo"), help="output folder")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed of the simulated scene")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return int(run_demo(args.out, seed=args.seed))


# ---- run -------------------------------------------------------------------------------------------------


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="process a recording: tracks.txt, change_masks/, items.json, memory.db",
        description="Process every frame of a ROS 2 bag, a video or a TUM RGB-D folder. OUT/memory.db is extended "
        "if it exists, so successive runs build one memory; the other outputs are rewritten.",
    )
    p.add_argument("input", type=Path, metavar="INPUT",
                   help="ROS 2 bag (folder or .mcap/.db3), video file, or folder in the TUM RGB-D layout")
    p.add_argument("--out", type=folder, required=True, help="output folder (created if missing)")
    p.add_argument("--config", type=Path, help="parameter YAML, e.g. config/spatial_memory.yaml")
    p.add_argument("--items", help="item names for tag ids, 'mug=3,pallet_A=17' (replaces the config's)")
    p.add_argument("--tag-size", type=positive_float, metavar="M", help="tag black-border edge length, m")
    p.add_argument("--camera", type=Path, metavar="YAML",
                   help="ROS camera_info YAML (videos have no intrinsics without it; overrides a TUM "
                   "folder's camera.yaml)")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="only the first N input frames")
    p.add_argument("--fps", type=positive_float, help="video frame rate for the stamps (overrides the file's)")
    p.add_argument("--depth-scale", type=positive_float, default=None, metavar="UNITS",
                   help="TUM folders only: depth PNG value of one metre: 1000 = mm (default), 5000 for the TUM "
                   "downloads")
    from .bag_args import add_bag_arguments

    add_bag_arguments(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ..core.settings_io import parse_items
    from .bag_args import bag_options
    from .run import format_summary, run_offline

    config = _load_config(args.config)
    tags = config.tags
    if args.items is not None:
        tags = dataclasses.replace(tags, items=parse_items(args.items))
    if args.tag_size is not None:
        tags = dataclasses.replace(tags, tag_size_m=args.tag_size)
    config = dataclasses.replace(config, tags=tags)
    summary = run_offline(
        args.input, args.out, config.validate(), fps=args.fps, camera_yaml=args.camera,
        max_frames=args.max_frames, depth_units_per_m=args.depth_scale, bag=bag_options(args),
        out_bag=args.out_bag,
    )
    print(format_summary(summary))
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if summary.frames == 0:
        reason = f"; first error: {summary.first_error}" if summary.first_error else ""
        print(f"{PROG}: error: no frame of {args.input} could be processed{reason}", file=sys.stderr)
        return EXIT_ERROR
    return 0


# ---- locate / list ---------------------------------------------------------------------------------------


def _add_db_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, required=True, help="memory database written by `run` or the node")
    p.add_argument("--config", type=Path,
                   help="parameter YAML the memory was built with (its displaced_distance_m decides "
                   "'displaced')")
    p.add_argument("--json", action="store_true", help="print JSON (the fields of the LocateItem service)")


def _add_locate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("locate", help="where is ITEM usually, where is it now")
    p.add_argument("item", metavar="ITEM", help="item name (or tag_<id> for a tag without a name)")
    _add_db_arguments(p)
    p.set_defaults(handler=_locate)


def _add_list(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", help="every item in the memory")
    _add_db_arguments(p)
    p.set_defaults(handler=_list)


def _locate(args: argparse.Namespace) -> int:
    from ..io.outputs import answer_to_dict
    from .query import format_answer, open_memory, recorded_frame

    with open_memory(args.db, _load_config(args.config).memory) as memory:
        answer, frame = memory.locate(args.item), recorded_frame(memory)
    print(json.dumps(answer_to_dict(answer, frame), indent=2) if args.json else format_answer(answer, frame))
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..io.outputs import items_to_dict
    from .query import format_items, open_memory, recorded_frame

    with open_memory(args.db, _load_config(args.config).memory) as memory:
        answers, frame = memory.list_all(), recorded_frame(memory)
    print(json.dumps(items_to_dict(answers, frame_id=frame), indent=2) if args.json
          else format_items(answers, args.db, frame))
    return 0


# ---- evaluate ---------------------------------------------------------------------------------------------


def _add_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score the pipeline on real recordings (Debian opencv-doc videos + public ground truth)",
        description="pets09: people tracking on vtest.avi (PETS09-S2L1) against MOTChallenge ground truth, "
        "ours and ByteTrack on the same detections: detection F1, HOTA, IDF1, MOTA, ms/frame; and the change "
        "mask against the people's boxes. Writes OUT/metrics.json, ours.txt, bytetrack.txt (MOTChallenge), "
        "tracks.png and change.png. cup, box: a hand moves "
        "an object (opencv-doc's cup.mp4 / box.mp4): how much of it the change mask covers, which item "
        "tracks sit on it, and whether the item memory's current / usual answer, positioned through an assumed "
        "camera and projected back, follows it. Writes OUT/<clip>_metrics.json and <clip>_change.png.",
    )
    p.add_argument("sequence", choices=["pets09", "cup", "box"], help="which recording")
    p.add_argument("--out", type=folder, required=True, help="output folder (created if missing)")
    p.add_argument("--video", type=Path, help="the video (default: opencv-doc's vtest.avi)")
    p.add_argument("--gt", type=Path, help="MOTChallenge gt.txt (default: ../shared/data/pets09-s2l1/gt.txt)")
    p.add_argument("--config", type=Path,
                   help="parameter YAML, laid over the evaluation's defaults (the built-in ones with "
                   "detector.backend coco and apriltag_items false); memory.db_path is ignored (the memory stays "
                   "in RAM)")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="only the first N frames")
    p.add_argument("--assumed-hfov-deg", type=positive_float, metavar="DEG",
                   help="cup, box: horizontal field of view of the assumed camera (the clips have no camera_info; "
                   "default 60)")
    p.add_argument("--assumed-distance-m", type=positive_float, metavar="M",
                   help="cup, box: assumed distance of the plane the object moves in (the clips have no depth); "
                   "positions are in these assumed metres, not metric (default 0.45)")
    p.add_argument("--pan-deg", type=finite_float, default=0.0, metavar="DEG",
                   help="pets09: see the video through a camera that pans +-DEG and tilts a quarter of that, "
                   "a 512x384 re-projection with its pose (evaluate/turning_view.py); 0 = the still camera")
    p.add_argument("--turn-period-s", type=finite_float, metavar="S",
                   help="pets09 with --pan-deg: seconds per pan cycle (the tilt's is 1.7 times that; default 20)")
    p.add_argument("--exposure-ms", type=finite_float, default=0.0, metavar="MS",
                   help="pets09 with --pan-deg: motion blur of a shutter open this long (0 = none)")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluate import moved, pets
    from ..evaluate.config import default_config

    config = None if args.config is None else evaluation_config(args.config, default_config())
    if args.sequence in moved.CLIPS:
        if args.pan_deg != 0 or args.exposure_ms != 0 or args.turn_period_s is not None:
            raise SpatialMemoryError("--pan-deg, --turn-period-s and --exposure-ms are for pets09 (its truth has "
                                     "people's boxes to re-project)")
        if args.video is not None or args.gt is not None:
            raise SpatialMemoryError(f"--video and --gt are for pets09; {args.sequence} is opencv-doc's "
                                     f"{args.sequence}.mp4 with its own truth")
        from ..evaluate.assumed_camera import AssumedCamera

        assumed = {k: v for k, v in (("hfov_deg", args.assumed_hfov_deg), ("distance_m", args.assumed_distance_m))
                   if v is not None}
        camera = AssumedCamera(**assumed)
        print(moved.format_report(moved.evaluate_moved(args.sequence, args.out, config=config,
                                                       max_frames=args.max_frames, camera=camera)))
        _say_written(args.out, [f"{args.sequence}_metrics.json", f"{args.sequence}_change.png"])
        return 0
    kwargs = {k: v for k, v in (("video", args.video), ("gt_path", args.gt)) if v is not None}
    turning = None
    if args.assumed_hfov_deg is not None or args.assumed_distance_m is not None:
        raise SpatialMemoryError("--assumed-hfov-deg and --assumed-distance-m are for cup and box (PETS09 is scored "
                                 "in pixels)")
    if args.exposure_ms < 0 or (args.exposure_ms > 0 and args.pan_deg == 0):
        raise SpatialMemoryError("--exposure-ms: a time >= 0, and only with --pan-deg (a still camera does not blur)")
    if args.turn_period_s is not None and args.pan_deg == 0:
        raise SpatialMemoryError("--turn-period-s: only with --pan-deg (a still camera does not turn)")
    if args.pan_deg != 0:
        import cv2

        from ..evaluate.turning_view import TurningView

        cap = cv2.VideoCapture(str(args.video or pets.VTEST_AVI))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        cap.release()
        if min(size) <= 0:
            raise SpatialMemoryError(f"cannot read the video's size: {args.video or pets.VTEST_AVI}")
        try:
            turning = TurningView(source_size=size, pan_deg=args.pan_deg, tilt_deg=args.pan_deg / 4,
                                  period_s=20.0 if args.turn_period_s is None else args.turn_period_s,
                                  exposure_s=args.exposure_ms / 1000.0)
        except ValueError as exc:  # a period or pan it cannot make
            raise SpatialMemoryError(f"--pan-deg / --turn-period-s / --exposure-ms: {exc}") from exc
    metrics = pets.evaluate_pets09(args.out, config=config, max_frames=args.max_frames, turning=turning, **kwargs)
    print(pets.format_report(metrics))
    _say_written(args.out, ["metrics.json", "ours.txt", "bytetrack.txt", "tracks.png", "change.png"])
    return 0


def evaluation_config(path: Path, base: PipelineConfig) -> PipelineConfig:
    """The parameter file at path laid over the evaluation's defaults (base): a file that sets only the change
    method changes only that (it needed the detector set too, or pets09 refused it and cup ran with tags only).
    Its memory settings are kept (they were once all replaced by base's) but for memory.db_path: an evaluation
    keeps its memory in RAM and leaves no file."""
    from ..core.store import in_ram

    loaded = _load_config(path, base=base)
    if not in_ram(loaded.memory.db_path):
        print(f"evaluate: memory.db_path {loaded.memory.db_path!r} ignored: an evaluation keeps its memory in RAM",
              file=sys.stderr)
    return dataclasses.replace(loaded, memory=dataclasses.replace(loaded.memory, db_path=base.memory.db_path))


def _say_written(out: Path, names: list[str]) -> None:
    """Which outputs this run wrote (the pictures are drawn only when the run reaches their frames)."""
    written = [n for n in names if (out / n).exists()]
    missing = [n for n in names if n not in written]
    print(f"\nwrote {out}/: {', '.join(written)}" + (f" (not drawn in so short a run: {', '.join(missing)})"
                                                      if missing else ""))


# ---- bench -----------------------------------------------------------------------------------------------


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..bench.cli import add_bench_arguments  # argparse only; the benchmark loads when it runs

    p = sub.add_parser(
        "bench",
        help="benchmark the pipeline and baselines on a simulated scene with ground truth",
        description="Render a simulated scene once and feed every frame to every method: tracking (det F1, "
        "HOTA, IDF1, MOTA), change masks (mIoU, F1), item layout and retrieval, cost. Prints the table, writes "
        "OUT/results.json, metrics.png, map.png, samples.png. --export DIR writes the sequence instead.",
    )
    add_bench_arguments(p)


# ---- train / bench-model (the learned model) ----------------------------------------------------------------


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..model.cli import add_train_arguments  # argparse only; torch loads when it runs

    p = sub.add_parser(
        "train",
        help="train the learned change/memory model on simulated training scenes (seeds >= 1000)",
        description="Truncated-BPTT training on generator streams (warehouse and home, static and patrol "
        "cameras). The defaults finish on 2 CPU cores in under an hour. Writes OUT and OUT.state.",
    )
    add_train_arguments(p)


def _add_bench_model(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..model.cli import add_bench_model_arguments

    p = sub.add_parser("bench-model", help="model-step frames/s and the memory bound over a 2-hour run")
    add_bench_model_arguments(p)


def _add_bench_node(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .bench_node import add_arguments  # argparse only; rclpy loads when it runs

    p = sub.add_parser(
        "bench-node",
        help="the whole node's speed over real DDS: sustained rate and end-to-end latency",
        description="Start the installed node as its own process, publish W x H images at a fixed rate from this "
        "one (stamp = publish time) and measure the TrackArrays: sustained processed rate and latency "
        "p50/p95/p99. Prints a table, writes OUT/results.json and OUT/node.log. Needs ROS 2 (rclpy).",
    )
    add_arguments(p)


def _add_fit_return_prior(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .fit_prior import add_arguments

    p = sub.add_parser(
        "fit-return-prior",
        help="fit the item memory's return prior (memory.return_prior) on training scene scripts",
        description="How long displaced items stay away before they are back at their usual place: a "
        "Kaplan-Meier survival curve over the stays of the training scenes' scripts (seeds >= 1000; no "
        "rendering). Writes the JSON that memory.return_prior_path reads (default: the shipped one).",
    )
    add_arguments(p)


def _add_train_tag_reader(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .train_reader import add_arguments

    p = sub.add_parser(
        "train-tag-reader",
        help="train the learned reader of undecodable tag quads (detector.learned_tag_reader)",
        description="Collect the tag finder's quads on training scenes (seeds >= 1000), label them from the "
        "scenes' truth, train the reader's small CNN on all but the last --val-scenes seeds and report its "
        "reads on those. Writes the weights detector.learned_tag_reader loads (default: the shipped ones).",
    )
    add_arguments(p)


# ---- shared ----------------------------------------------------------------------------------------------


def _load_config(path: Path | None, *, base: PipelineConfig | None = None) -> PipelineConfig:
    """The YAML at path over base (PipelineConfig() by default); base itself without a path."""
    if path is None:
        return base or PipelineConfig()
    from ..core.settings_io import load_pipeline_config

    return load_pipeline_config(path, base=base)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (e.g. captured by a test)
        pass


if __name__ == "__main__":
    sys.exit(main())
