"""`spatial-memory bench-node`: arguments and handler (the benchmark itself is ros/bench_node.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.errors import BadInputError
from ..core.settings_io import yaml_error
from .arg_types import finite_float, folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detector", choices=["apriltag", "coco"], default="coco", help="detector.backend (default coco)")
    p.add_argument("--seconds", type=finite_float, default=30.0, help="measured window, s (default 30)")
    p.add_argument("--warmup", type=finite_float, default=5.0, metavar="S",
                   help="published before measuring (default 5)")
    p.add_argument("--rate", type=finite_float, default=10.0, metavar="HZ", help="publish rate (default 10)")
    p.add_argument("--size", default="640x480", metavar="WxH", help="image size (default 640x480)")
    p.add_argument("--transport", choices=["raw", "compressed"], default="raw",
                   help="raw bgr8 Image, or jpeg CompressedImage (the node's image_transport)")
    p.add_argument("--reliable", action="store_true",
                   help="reliable camera subscriptions (QoS override); default: the node's best effort")
    p.add_argument("--fastdds-profile", type=Path, metavar="XML",
                   help="Fast DDS XML profile for both processes, e.g. config/fastdds_large_shm.xml")
    p.add_argument("--video", type=Path, help="frames from this video (e.g. opencv-doc's vtest.avi) instead of "
                   "the demo simulation")
    p.add_argument("--cameras", type=int, default=1, metavar="N",
                   help="cameras the node serves (its cameras parameter), each fed the same frames at --rate; "
                        "N > 1 places them by /tf (default 1)")
    p.add_argument("--stagger", action="store_true",
                   help="with --cameras N: camera i publishes i/N of a period after camera 0 (cameras not "
                        "triggered together); default: all at once, with one stamp")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a node parameter (repeatable), the value in YAML, e.g. change.method=learned")
    p.add_argument("--out", type=folder, default=Path("bench_node_out"),
                   help="folder for results.json and node.log (default bench_node_out)")
    p.set_defaults(handler=run)


def parse_params(items: list[str]) -> dict[str, Any]:
    """{name: value} from NAME=VALUE strings, each value read as YAML (true, 0.5, [a, b], text)."""
    import yaml

    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BadInputError(f"--param must look like NAME=VALUE, got {item!r}")
        try:
            params[name.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise BadInputError(f"--param {name.strip()}: the value {value!r} is not YAML ({yaml_error(e)})") from None
    return params


def run(args: argparse.Namespace) -> int:
    from ..ros.bench_node import BenchSettings, format_result, run_bench, write_result
    from ..ros.camera_input import MAX_CAMERAS

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise BadInputError(f"--size must look like 640x480, got {args.size!r}") from None
    if args.seconds <= 0 or args.rate <= 0 or args.warmup < 0 or not 1 <= args.cameras <= MAX_CAMERAS or w < 1 or h < 1:
        raise BadInputError(f"--seconds and --rate must be > 0, --warmup >= 0, --size at least 1x1, "
                            f"--cameras 1 to {MAX_CAMERAS}")
    settings = BenchSettings(
        node_params=parse_params(args.param),
        detector=args.detector, seconds=args.seconds, warmup_s=args.warmup, rate_hz=args.rate, width=w, height=h,
        transport=args.transport, reliable=args.reliable,
        fastdds_profile=str(args.fastdds_profile) if args.fastdds_profile else "",
        video=str(args.video) if args.video else "", cameras=args.cameras, stagger=args.stagger,
    )
    result = run_bench(settings, args.out)
    print(format_result(result))
    write_result(result, args.out / "results.json")
    print(f"wrote {args.out / 'results.json'}")
    return 0
